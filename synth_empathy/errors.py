"""Errors that carry one clear sentence for the user."""


class UserError(Exception):
    """Bad input (config, file, flag): the CLI prints the message and exits with code 2."""


class RunError(Exception):
    """The run itself failed (model unreachable, ...): the CLI prints the message and exits with code 1."""
