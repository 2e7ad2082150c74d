"""User-facing errors: the CLI prints these as one line, without a traceback."""


class UserError(Exception):
    """Bad input from the user (a flag, a path, an annotation). The message is the whole story."""
