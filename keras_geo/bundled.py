"""The model shipped inside the package: what `predict` and `app` use without `--model`.

A `keras-geo export` SavedModel (decoding and resizing inside; it loads with
TensorFlow alone, whatever keras-geo's Python classes become) trained on
real screenshots of the 20 top countries from random weights
(`experiments/scratch_top20.py`; data, recipe and measured accuracy in
`docs/model_card.md`). `MANIFEST.json` beside it lists every file with its
size and SHA-256, so a deleted, truncated or altered file is named in one
line before TensorFlow reads anything.
"""

import hashlib
import json
import pathlib

from keras_geo import paths
from keras_geo.errors import UserError

DIRECTORY = pathlib.Path(__file__).parent / "bundled_model"
NAME = "keras-geo bundled top20 model"
MANIFEST = "MANIFEST.json"
REINSTALL = (
    "reinstall keras-geo (pip install --force-reinstall keras-geo; in a clone: "
    "git checkout -- keras_geo/bundled_model && pip install .)"
)


def path(directory=None) -> pathlib.Path:
    """The bundled SavedModel's directory, checked against its manifest.

    Raises:
        UserError: the manifest or a file it lists is missing, truncated or
            altered (the message names the file and how to reinstall).
    """
    directory = pathlib.Path(directory or DIRECTORY)
    for name, expected in read_manifest(directory).items():
        problem = _file_problem(directory / name, expected)
        if problem:
            raise UserError(
                f"the bundled model is damaged: {directory / name} {problem}; {REINSTALL}"
            )
    return directory


def read_manifest(directory) -> dict:
    """`{relative path: {"bytes": int, "sha256": str}}` of the bundled model's files."""
    manifest = pathlib.Path(directory) / MANIFEST
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        raise UserError(f"the bundled model is missing: no {manifest}; {REINSTALL}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"the bundled model is damaged: {manifest} is unreadable; {REINSTALL}"
        ) from None
    if not isinstance(files, dict) or not files:
        raise UserError(f"the bundled model is damaged: {manifest} lists no file; {REINSTALL}")
    return files


def write_manifest(directory) -> dict:
    """Writes `MANIFEST.json` for every file under `directory` (when shipping a new model)."""
    directory = pathlib.Path(directory)
    files = {
        file.relative_to(directory).as_posix(): {
            "bytes": file.stat().st_size,
            "sha256": _sha256(file),
        }
        for file in sorted(directory.rglob("*"))
        if file.is_file() and file.name != MANIFEST
    }
    paths.write_json(directory / MANIFEST, {"files": files})
    return files


def size_bytes(directory=None) -> int:
    """The bundled model's size on disk, as its manifest states it."""
    return sum(entry["bytes"] for entry in read_manifest(directory or DIRECTORY).values())


def _file_problem(file, expected):
    """Why `file` is not what the manifest says, or None."""
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        return "is missing"
    if size != expected.get("bytes"):
        return f"has {size} bytes, not {expected.get('bytes')} (truncated or replaced)"
    if _sha256(file) != expected.get("sha256"):
        return "does not match its SHA-256 (altered)"
    return None


def _sha256(file):
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
