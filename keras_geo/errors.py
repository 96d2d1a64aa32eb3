"""The exception types the CLI turns into one-line messages."""


class UserError(Exception):
    """Bad input from the user: the message names the thing and the fix.

    The CLI prints it as one line (`keras-geo: error: <message>`) and exits 2,
    never with a traceback. Raise it for anything a user can correct: a
    missing path, a dataset that was never built, a bad flag value.
    """


class StorageError(Exception):
    """A file could not be written mid-run (full disk, read-only file system).

    The CLI prints it as one line naming the path and exits 1; what was
    finished before is kept, and rerunning the same command resumes.
    """


def one_line(error, limit=300):
    """The error's first non-empty line (its type name if none), cut to `limit` characters.

    Example: `one_line(ValueError("bad file\\nmore detail"))` returns `"bad file"`.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
