"""Errors that carry one clear sentence for the user."""


class UserError(Exception):
    """Bad input (config, file, flag): the CLI prints the message and exits with code 2."""


def error_detail(exc: BaseException) -> str:
    """The error class and message of a failed call, as recorded in rejected.jsonl."""
    return f"{type(exc).__name__}: {exc}"[:500]


class RunError(Exception):
    """The run itself failed (model unreachable, ...): the CLI prints the message and exits with code 1."""
