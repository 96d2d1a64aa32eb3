"""Find the Kaggle GeoGuessr images in a manual dir and list them.

The manual dir may hold any of the three layouts a user ends up with:

1. the country folders directly (`<manual_dir>/<Country>/*.jpg`),
2. the extracted archive (`<manual_dir>/compressed_dataset/<Country>/...`,
   also one level deeper, e.g. `<manual_dir>/<anything>/compressed_dataset/`),
3. the zip as downloaded (`<manual_dir>/*.zip`, or the `.zip` itself given
   as the manual dir), read in place with `zipfile`.

Folders are preferred over a zip when both are present (no decompression
cost). `etils.epath` and `zipfile` read the file system, so remote file
systems work; `os.stat` tells links, loops and FIFOs apart on local ones.

Listing never stops at one odd entry: a name that is not UTF-8, a symbolic
link that loops or points nowhere, a FIFO or socket, an unreadable folder
each become an `Entry` with a `problem` (reported by a printable name, never
read), and folders reached twice through symbolic links are listed once.
"""

import collections
import contextlib
import dataclasses
import os
import stat
import zipfile

from etils import epath

from tfds_geoguessr.geoguessr import limits

# Files that operating systems and archivers leave in folders: never images.
SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "Desktop.ini"})
SYSTEM_FOLDERS = frozenset({"__MACOSX", ".AppleDouble", ".Trashes", ".Spotlight-V100"})
KAGGLE_FOLDER = "compressed_dataset"


class LayoutError(Exception):
    """The manual dir holds nothing that looks like the Kaggle data."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the country folders are: a directory, or a prefix inside a zip."""

    kind: str  # "dir" or "zip".
    path: epath.Path  # The root directory, or the zip file.
    prefix: str = ""  # Zip only: member prefix of the country folders.

    def __str__(self):
        if self.kind == "zip":
            return f"{self.path} (zip, folder '{self.prefix or '/'}')"
        return str(self.path)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file below a top-level folder of the source."""

    folder: str  # Top-level folder name, e.g. "France".
    relpath: str  # Posix path inside that folder, e.g. "canvas_1.jpg".
    size: int  # Bytes.
    location: str  # Absolute path (dir) or member name (zip).
    problem: str | None = None  # Why it cannot be read as a file, if so.

    @property
    def file_name(self) -> str:
        """`<Country>/<file>`: the example key and `file_name` feature (printable)."""
        return printable(f"{self.folder}/{self.relpath}")


def printable(name: str) -> str:
    """`name` with bytes that are not UTF-8 shown as `\\xNN` escapes.

    File names that are not valid UTF-8 reach Python as lone surrogates
    (`os.fsdecode`), which cannot be written to JSON or used as example keys.

    Example: `printable("caf\\udce9.jpg") == "caf\\\\xe9.jpg"`.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def skip_reason(entry: Entry) -> str | None:
    """Why a listed file is not even tried as an image, or None."""
    if entry.problem:
        return entry.problem
    if printable(entry.relpath) != entry.relpath:
        return "file name is not valid UTF-8"
    parts = entry.relpath.split("/")
    name = parts[-1]
    if name in SYSTEM_FILES or name.startswith("._"):
        return "system file"
    if any(part in SYSTEM_FOLDERS for part in parts[:-1]):
        return "system folder"
    if entry.size == 0:
        return "empty file"
    return None


def locate(manual_dir, countries) -> Source:
    """Returns where the country folders are in `manual_dir`.

    Args:
        manual_dir: The directory the user put the download in.
        countries: Every known country folder name (used to recognise
            country folders).

    Raises:
        LayoutError: nothing in `manual_dir` looks like the Kaggle data.
    """
    manual_dir = epath.Path(manual_dir)
    countries = set(countries)
    if manual_dir.is_file():
        return _zip_source(manual_dir, countries)
    if not manual_dir.is_dir() or not any(manual_dir.iterdir()):
        raise LayoutError(f"manual dir {manual_dir} does not exist or is empty")
    for root in _candidate_roots(manual_dir):
        if root.is_dir() and any(c.is_dir() and c.name in countries for c in root.iterdir()):
            return Source("dir", root)
    zips = sorted(p for p in manual_dir.iterdir() if p.name.lower().endswith(".zip"))
    corrupt = []
    for path in zips:
        try:
            return _zip_source(path, countries)
        except LayoutError as error:
            corrupt.append(error)
    if corrupt:
        raise corrupt[0]
    raise LayoutError(f"no country folders, {KAGGLE_FOLDER}/ or Kaggle .zip found in {manual_dir}")


def _zip_source(path, countries):
    prefix = _zip_prefix(path, countries)
    if prefix is None:
        raise LayoutError(f"no country folders found in the zip {path}")
    return Source("zip", path, prefix)


def _candidate_roots(manual_dir):
    yield manual_dir
    yield manual_dir / KAGGLE_FOLDER
    for child in sorted(manual_dir.iterdir()):
        if child.is_dir() and child.name not in SYSTEM_FOLDERS:
            yield child
            yield child / KAGGLE_FOLDER


def _zip_prefix(path, countries):
    """The most common member prefix in front of a country folder, or None."""
    try:
        with path.open("rb") as fobj, zipfile.ZipFile(fobj) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise LayoutError(
            f"{path} is not a readable zip: corrupt or truncated ({error}); download it again"
        ) from None
    prefixes = collections.Counter()
    for name in names:
        parts = name.split("/")
        if parts[0] in SYSTEM_FOLDERS:
            continue
        for i, part in enumerate(parts[:-1]):
            if part in countries:
                prefixes["".join(p + "/" for p in parts[:i])] += 1
                break
    return prefixes.most_common(1)[0][0] if prefixes else None


def list_files(source: Source):
    """Lists every file of the source.

    Returns:
        `(entries, outside)`: `entries` are the files below a top-level folder
        (recursively: a file in `France/a/b.jpg` is France's); `outside` are
        the paths of files that are in no top-level folder.
    """
    if source.kind == "zip":
        return _list_zip(source)
    entries, outside = [], []
    seen = {_identity(source.path)}
    for child in sorted(source.path.iterdir()):
        if _kind(child) == "dir" and _visit(child, seen):
            entries.extend(_walk(child, printable(child.name), "", seen))
        else:
            outside.append(printable(child.name))
    return entries, outside


def _walk(directory, folder, prefix, seen):
    """Yields an `Entry` per file below `directory`; `seen`: real folders listed."""
    try:
        children = sorted(directory.iterdir())
    except OSError as error:
        yield Entry(folder, prefix or ".", 0, str(directory), f"unreadable folder: {error}")
        return
    for child in children:
        relpath = prefix + child.name
        kind = _kind(child)
        if kind == "dir":
            if _visit(child, seen):
                yield from _walk(child, folder, relpath + "/", seen)
            else:
                yield Entry(
                    folder,
                    relpath,
                    0,
                    str(child),
                    "symbolic link to a folder already listed (loop)",
                )
        elif kind == "file":
            try:
                yield Entry(folder, relpath, child.stat().length, str(child))
            except OSError as error:
                yield Entry(folder, relpath, 0, str(child), f"unreadable: {error}")
        else:
            yield Entry(folder, relpath, 0, str(child), kind)


def _kind(path):
    """ "dir", "file" (regular; links followed), or why `path` is neither."""
    if "://" in str(path):  # Remote file systems have no links, FIFOs or loops.
        return "dir" if path.is_dir() else "file"
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if os.path.islink(path):
            return "symbolic link loop or to nothing"
        return f"unreadable: {error.strerror}"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "not a regular file"


def _identity(path):
    """What makes a folder the same folder, whatever links lead to it."""
    if "://" in str(path):
        return str(path)
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _visit(directory, seen):
    """Adds `directory` to `seen`; False if it was there (a link loop)."""
    identity = _identity(directory)
    if identity in seen:
        return False
    seen.add(identity)
    return True


def _list_zip(source):
    entries, outside = [], []
    with source.path.open("rb") as fobj, zipfile.ZipFile(fobj) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            rest = name[len(source.prefix) :] if name.startswith(source.prefix) else None
            if rest is None or "/" not in rest:
                outside.append(name)
                continue
            folder, relpath = rest.split("/", 1)
            entries.append(Entry(folder, relpath, info.file_size, name))
    return entries, outside


@contextlib.contextmanager
def reader(source: Source, max_bytes: int):
    """Yields `read(entry) -> bytes`; a zip is opened once for all reads.

    Every read keeps to the byte budget (`limits.read_file`,
    `limits.read_stream`): a file or zip member that declares more than
    `max_bytes` is refused unread, one that holds more is refused after
    `max_bytes`, and a pipe or device among the files never blocks or fills
    the memory.

    Raises (from `read`):
        limits.TooLarge: above `max_bytes`.
        ValueError, OSError, zipfile.BadZipFile: unreadable.
    """
    if source.kind != "zip":
        yield lambda entry: _read_path(entry, max_bytes)
        return
    with source.path.open("rb") as fobj, zipfile.ZipFile(fobj) as archive:

        def read_member(entry):
            info = archive.getinfo(entry.location)
            if info.file_size > max_bytes:  # Before the member is opened.
                raise limits.too_many_bytes(info.file_size, max_bytes)
            with archive.open(info) as member:
                return limits.read_stream(member, max_bytes)

        yield read_member


def _read_path(entry, max_bytes):
    if "://" in entry.location:  # Remote file systems have no pipes or devices.
        with epath.Path(entry.location).open("rb") as f:
            return limits.read_stream(f, max_bytes, declared=entry.size)
    return limits.read_file(entry.location, max_bytes)
