"""One writer at a time per run directory and per data dir.

Two `train`s into one run directory mix their history rows under one
`config.json`; a second `data build` deletes the first one's temporary
folder. `exclusive(directory, flag)` holds an advisory lock on
`<directory>/.keras-geo.lock` (`fcntl.flock`) for as long as a command
writes there: a second writer gets one line naming the first (its pid, host,
start time and command line) and exits before touching anything. The kernel
releases the lock when its process ends, however it ends (Ctrl-C, a crash,
`kill -9`): a stale lock file never blocks anyone.

The lock file is deleted when the lock is released (a waiter that opened
the old file notices it is gone and takes a fresh one), and a directory the
lock itself had to create is removed again if nothing else was written in
it, so a command that fails early leaves no trace. Within one process the
lock is re-entrant (`train` evaluates its own run). A directory where no
file can be created (read-only, a file in the way) is not locked here: the
command's own checks (`keras_geo.paths.check_writable`) say what is wrong.
The `filelock` package would keep its lock file and cannot name the holder,
hence these few lines of standard library.
"""

import contextlib
import datetime
import fcntl
import os
import pathlib
import shlex
import socket
import sys
import threading

from keras_geo.errors import UserError

LOCK_NAME = ".keras-geo.lock"
_HOLDER_BYTES = 400  # Enough of the holder's line for the message.

_held = {}  # Real path of a directory -> how many times this process entered it.
_held_lock = threading.Lock()


@contextlib.contextmanager
def exclusive(directory, flag):
    """Holds the writer's lock of `directory` (created if need be) for the `with` block.

    Args:
        directory: a run directory or a data dir.
        flag: how the user named it, for the message (e.g. "--run-dir").

    Raises:
        UserError: another process holds it (one line naming that process).

    Example:
        with locks.exclusive("runs/a", "--run-dir"):
            ...  # Only this process writes runs/a now.
    """
    directory = pathlib.Path(directory)
    key = os.path.realpath(directory)
    with _held_lock:
        again = key in _held
        _held[key] = _held.get(key, 0) + 1
    try:
        if again:
            yield
            return
        created = _missing_dirs(directory)
        fd = _lock(directory, flag)
        try:
            yield
        finally:
            _unlock(directory / LOCK_NAME, fd)
            for folder in created:  # Deepest first; only those left empty.
                with contextlib.suppress(OSError):
                    folder.rmdir()
    finally:
        with _held_lock:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]


def holder_line():
    """What the lock file says about this process: pid, host, start time, command line."""
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    command = shlex.join(["keras-geo" if i == 0 else arg for i, arg in enumerate(sys.argv)])
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {command}"


def _missing_dirs(directory):
    """The folders of `directory`'s path that do not exist yet, deepest first."""
    missing = []
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _lock(directory, flag):
    """The file descriptor holding the lock, or None where no lock file can be made."""
    path = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # Not a writable directory: the command's own check says so.
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(
                f"{flag} {directory} is in use by another keras-geo process ({holder}): "
                f"wait for it to finish, or choose another {flag}."
            ) from None
        except OSError:  # A file system without flock: nothing to hold.
            os.close(fd)
            return None
        if _same_file(path, fd):
            break
        os.close(fd)  # Its holder deleted it while releasing: take the new one.
    with contextlib.suppress(OSError):  # A full disk keeps the lock, not the line.
        os.ftruncate(fd, 0)
        os.write(fd, (holder_line()[:_HOLDER_BYTES] + "\n").encode())
    return fd


def _read_holder(fd):
    try:
        text = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "it has not said who it is yet"


def _same_file(path, fd):
    try:
        on_disk, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _unlock(path, fd):
    if fd is None:
        return
    if _same_file(path, fd):
        with contextlib.suppress(OSError):
            path.unlink()
    os.close(fd)  # Releases the lock.
