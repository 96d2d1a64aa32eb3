"""keras-geo's exception types: built-in ones, with a message a user can act on.

The library raises them (and plain `ValueError`/`TypeError`, as Keras does);
`keras_geo.cli.main` turns them into one line (`keras-geo: error: ...`) and an
exit status, never a traceback. A Python user catches `UserError` as the
`ValueError` it is: nothing here belongs to the command line.
"""


class UserError(ValueError):
    """A value the user gave is wrong (a path, a setting, a file): the message names it and the fix.

    A `ValueError`, like Keras' own for a bad argument, so `except ValueError`
    catches it; the CLI prints it as one line and exits 2. Raise it for
    anything a user can correct: a missing path, a dataset that was never
    built, a bad flag value.
    """


class ModelError(RuntimeError):
    """The model, not the input, failed (e.g. it outputs NaN): the message says what to do.

    Not a `ValueError`, so callers that report a bad upload (400, a per-file
    error) let it through; the CLI prints it as one line and exits 2.
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
