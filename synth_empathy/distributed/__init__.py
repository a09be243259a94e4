"""Running on Ray: generation over an actor pool (`RayExecutor`) and MinHash dedup as a band join
(`ray_find_duplicates`). Ray is an optional extra: `pip install 'synth-empathy[ray]'`."""

from __future__ import annotations

from synth_empathy.errors import UserError

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'synth-empathy[ray]'"


def require_ray():
    """The `ray` module, or one sentence saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError as exc:
        raise UserError(INSTALL_HINT) from exc
    return ray


def __getattr__(name: str):
    # Lazy, so `import synth_empathy.distributed` works (and says how to install) without Ray.
    if name == "RayExecutor":
        from synth_empathy.distributed.generate import RayExecutor

        return RayExecutor
    if name == "ray_find_duplicates":
        from synth_empathy.distributed.dedup import ray_find_duplicates

        return ray_find_duplicates
    raise AttributeError(name)


__all__ = ["INSTALL_HINT", "RayExecutor", "ray_find_duplicates", "require_ray"]
