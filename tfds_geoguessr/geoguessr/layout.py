"""Find the Kaggle GeoGuessr images in a manual dir and list them.

The manual dir may hold any of the three layouts a user ends up with:

1. the country folders directly (`<manual_dir>/<Country>/*.jpg`),
2. the extracted archive (`<manual_dir>/compressed_dataset/<Country>/...`,
   also one level deeper, e.g. `<manual_dir>/<anything>/compressed_dataset/`),
3. the zip as downloaded (`<manual_dir>/*.zip`), read in place with `zipfile`.

Folders are preferred over a zip when both are present (no decompression
cost). Only `etils.epath` and `zipfile` touch the file system, so the TFDS
test harness (which mocks `os` and `open`) and remote file systems work.
"""

import collections
import contextlib
import dataclasses
import zipfile

from etils import epath

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

    @property
    def file_name(self) -> str:
        """`<Country>/<file>`: the example key and `file_name` feature."""
        return f"{self.folder}/{self.relpath}"


def skip_reason(entry: Entry) -> str | None:
    """Why a listed file is not even tried as an image, or None."""
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
    if not manual_dir.is_dir() or not any(manual_dir.iterdir()):
        raise LayoutError(f"manual dir {manual_dir} does not exist or is empty")
    countries = set(countries)
    for root in _candidate_roots(manual_dir):
        if root.is_dir() and any(c.is_dir() and c.name in countries for c in root.iterdir()):
            return Source("dir", root)
    zips = sorted(p for p in manual_dir.iterdir() if p.name.lower().endswith(".zip"))
    for path in zips:
        prefix = _zip_prefix(path, countries)
        if prefix is not None:
            return Source("zip", path, prefix)
    raise LayoutError(f"no country folders, {KAGGLE_FOLDER}/ or Kaggle .zip found in {manual_dir}")


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
    except zipfile.BadZipFile:
        return None
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
    for child in sorted(source.path.iterdir()):
        if child.is_dir():
            entries.extend(_walk(child, child.name, ""))
        else:
            outside.append(child.name)
    return entries, outside


def _walk(directory, folder, prefix):
    for child in sorted(directory.iterdir()):
        relpath = prefix + child.name
        if child.is_dir():
            yield from _walk(child, folder, relpath + "/")
        else:
            yield Entry(folder, relpath, child.stat().length, str(child))


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
def reader(source: Source):
    """Yields `read(entry) -> bytes`; a zip is opened once for all reads."""
    if source.kind != "zip":
        yield lambda entry: epath.Path(entry.location).read_bytes()
        return
    with source.path.open("rb") as fobj, zipfile.ZipFile(fobj) as archive:
        yield lambda entry: archive.read(entry.location)
