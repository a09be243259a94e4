"""One writer per output: an exclusive lock on an --out folder or file, held for the whole command.

`fcntl.flock`, not the `filelock` package: the kernel drops the lock when its holder dies (SIGKILL, power
loss), so a crash never leaves a stale lock to clear by hand; the holder writes its pid into the lock file
so a refused writer can name it; and it is twenty lines of the standard library where `filelock` 4.x is a
15,000-line package whose native Unix lock does not expose the holder's pid. POSIX only, like the signal
handling of `generate`. Works on local filesystems and on Linux NFS (flock is emulated with POSIX locks there).

A folder --out is locked through DIR/.lock, a file --out through a hidden sibling `.NAME.lock`. The lock
file is removed on release; a waiter that had it open checks after locking that its inode is still the one
at the path, so removing it never lets two writers in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from synth_empathy.errors import UserError

LOCK = ".lock"


def lock_path(out: Path, folder: bool) -> Path:
    return out / LOCK if folder else out.parent / f".{out.name}.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "pid unknown"
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock on `path`, or None if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed this inode as it released it: lock the file now at the path


@contextlib.contextmanager
def output_lock(out: Path, *, folder: bool, flag: str = "--out") -> Iterator[None]:
    """Hold the one-writer lock on `out` (a folder, created if missing, or a file) for the `with` block.

    Raises UserError (one sentence, exit 2) when another process holds it, or when `out` cannot hold a lock.

    Example:
        >>> with output_lock(Path("outputs/run"), folder=True):  # doctest: +SKIP
        ...     ...  # write records
    """
    out = Path(out)
    path = lock_path(out, folder)
    made = [d for d in [path.parent, *path.parent.parents] if not d.exists()]  # the folders it creates, deepest first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path)
    except OSError as exc:
        raise UserError(f"{flag} {out} cannot be written: {exc.strerror or exc}") from exc
    if fd is None:
        raise UserError(f"{flag} {out} is being written by another synth-empathy process ({_holder(path)}); "
                        f"wait for it or choose another {flag}")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it, so no one locks the old inode unseen (see _try_lock)
        os.close(fd)
        # A refused or failed command leaves no empty folder behind; rmdir removes nothing that holds a file.
        for folder_made in made:
            try:
                folder_made.rmdir()
            except OSError:
                break
