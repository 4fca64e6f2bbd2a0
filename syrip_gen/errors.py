"""The one exception type the CLI turns into a one-line message (no traceback, exit code 2)."""


class UserError(Exception):
    """Bad input or environment the user can fix; the message says what and how."""
