"""The one exception type the CLI turns into a one-line message."""


class UserError(Exception):
    """Bad input from the user: the message names the thing and the fix.

    The CLI prints it as one line (`keras-geo: error: <message>`) and exits 2,
    never with a traceback. Raise it for anything a user can correct: a
    missing path, a dataset that was never built, a bad flag value.
    """
