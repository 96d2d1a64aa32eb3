"""Where a command may write, and how: one up-front check and atomic writes.

`check_writable` is the "can I write here" check every command makes before
any long work. `atomic_write` (and `write_text`, `write_json` on top of it)
writes a file under a temporary name next to it and renames it into place, so
a crash, a kill or a full disk never leaves a half-written file where a later
run would read it. A failed write raises `keras_geo.errors.StorageError`
naming the path (the CLI prints it in one line and exits 1).
"""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

from keras_geo.errors import StorageError, UserError, one_line

TMP_PREFIX = ".tmp-"  # Temporary files: `.tmp-<pid>-<name>` next to their target.


def check_writable(path, flag, *, kind="dir"):
    """Raises `UserError` unless `path` can be written (or created) now.

    Args:
        path: the output location; it need not exist yet.
        flag: how the user named it, for the message (e.g. "--run-dir").
        kind: "dir" (`path` must be a directory or absent) or "file".

    Raises:
        UserError: `path` (or a parent) has the wrong kind, or its nearest
            existing directory refuses a new file (read-only file system,
            permissions, full disk).

    Example: `check_writable("runs/a", "--run-dir")` passes in a writable
    folder, even before `runs/` exists.
    """
    path = pathlib.Path(path)
    if path.exists() and kind == "dir" and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory: pass a directory.")
    if path.is_dir() and kind == "file":
        raise UserError(f"{flag} {path} is a directory, not a file: pass a file name.")
    existing = path if path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {path}: {existing} is a file, not a directory.")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=TMP_PREFIX):
            pass
    except OSError as error:
        raise UserError(
            f"{flag} {path} is not writable ({error.strerror or error} in {existing}): "
            f"choose another {flag} or make it writable."
        ) from None


def storage_error(error, path):
    """The `StorageError` for an `OSError` met while writing `path`."""
    errno = getattr(error, "errno", None)  # h5py's own strerror spans lines: use the errno's.
    reason = os.strerror(errno) if errno else one_line(error)
    return StorageError(
        f"cannot write {path} ({reason}): free space or fix the permissions, "
        "then rerun the same command to resume."
    )


@contextlib.contextmanager
def atomic_write(path, *, optional=False):
    """Yields a temporary path next to `path`; renames it to `path` on success.

    The temporary name keeps `path`'s suffix (`.tmp-<pid>-model.keras`), so
    writers that check the extension accept it. On any error the temporary
    file (or folder) is removed and `path` is left as it was. With
    `optional`, a block that wrote nothing leaves `path` as it was. A folder
    written at the temporary path replaces a folder at `path` even when that
    one is not empty (`_replace`).

    Raises:
        StorageError: writing failed with an `OSError` (disk full, read-only).
    """
    path = pathlib.Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if not (optional and not tmp.exists()):
            _replace(tmp, path)
    except OSError as error:
        raise storage_error(error, path) from error
    finally:
        _remove(tmp)


def _replace(tmp, path):
    """`os.replace(tmp, path)`, also for a folder over a non-empty folder.

    POSIX renames a folder only over an empty one: the old folder is first
    renamed aside (`.tmp-<pid>-old-<name>`), then the new one into place, then
    the old one removed. If the second rename fails the old one goes back.
    """
    if not (tmp.is_dir() and path.is_dir() and not path.is_symlink()):
        os.replace(tmp, path)
        return
    old = path.with_name(f"{TMP_PREFIX}{os.getpid()}-old-{path.name}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
    _remove(old)


def check_space(path, nbytes):
    """Raises `StorageError` unless `path`'s file system has room for `nbytes` (+5%).

    Some writers (h5py) crash instead of failing cleanly when the disk fills
    up halfway through a file; checking first keeps the error one line.
    """
    path = pathlib.Path(path)
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    needed = int(nbytes * 1.05) + 2**20
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise StorageError(
            f"cannot write {path} (No space left on device: it needs about "
            f"{needed / 2**20:.0f} MiB, {free / 2**20:.0f} MiB are free): free space, "
            "then rerun the same command to resume."
        )


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, value, *, sort_keys=True):
    """Writes `value` as indented JSON (and a final newline) to `path` atomically.

    Raises:
        ValueError: `value` holds NaN or an infinity, which JSON has no
            spelling for (Python would write a bare `NaN`); nothing is written.
    """
    write_text(path, json.dumps(value, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def remove_leftovers(directory, pattern):
    """Deletes what a killed process left in `directory` under `pattern` (a glob).

    Returns:
        The removed paths.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    removed = sorted(directory.glob(pattern))
    for path in removed:
        _remove(path)
    return removed


def _remove(path):
    path = pathlib.Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
