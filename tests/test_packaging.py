"""The wheel carries every non-Python file the code reads at run time."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel of a clean copy of the tree (a stale `build/` hides what setup.cfg misses)."""
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "keras-geo"
    leftovers = shutil.ignore_patterns(
        "build", "dist", ".venv", ".git", "*.egg-info", "__pycache__", ".pytest_cache"
    )
    shutil.copytree(ROOT, source, ignore=leftovers)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
    )
    (wheel,) = out.glob("keras_geo-*.whl")
    return zipfile.ZipFile(wheel)


def test_wheel_has_the_builders_data_files(wheel):
    wheel_names = set(wheel.namelist())
    folder = "tfds_geoguessr/geoguessr/"
    for name in ("labels_top20.txt", "labels_all.txt", "README.md", "CITATIONS.bib", "TAGS.txt"):
        assert folder + name in wheel_names
    for name in ("synthetic_cues.csv", "synthetic_climates.csv"):  # The synthetic scenes' tables.
        assert folder + name in wheel_names
    assert any(n.startswith(folder + "dummy_data/") and n.endswith(".jpg") for n in wheel_names)


def test_wheel_installs_experiments_under_keras_geo(wheel):
    wheel_names = set(wheel.namelist())
    for name in ("feature_extraction", "finetune_crossentropy", "finetune_haversine", "demo"):
        assert f"keras_geo/experiments/{name}.py" in wheel_names


def test_wheel_declares_the_console_script(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    assert "keras-geo = keras_geo.cli.main:main" in wheel.read(entry_points).decode()


def test_wheel_has_the_app_and_its_extra(wheel):
    wheel_names = set(wheel.namelist())
    for name in ("server", "ui", "worldmap", "gradcam", "batching", "examples", "launch"):
        assert f"keras_geo/app/{name}.py" in wheel_names
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert "Provides-Extra: app" in text
    assert any(line.startswith("Requires-Dist: gradio") for line in text.splitlines())


def test_wheel_ships_every_package_of_the_tree(wheel):
    """A package missing from setup.cfg works in a clone (editable) and breaks `pip install .`."""
    names = set(wheel.namelist())
    inits = [*ROOT.glob("keras_geo/**/__init__.py"), *ROOT.glob("tfds_geoguessr/**/__init__.py")]
    for init in inits:
        assert init.relative_to(ROOT).as_posix() in names, init


def test_wheel_ships_the_bundled_model_with_its_manifest(wheel):
    import json

    names = set(wheel.namelist())
    manifest = json.loads(wheel.read("keras_geo/bundled_model/MANIFEST.json"))
    for name, entry in manifest["files"].items():
        assert wheel.getinfo(f"keras_geo/bundled_model/{name}").file_size == entry["bytes"]
    assert "keras_geo/bundled_model/saved_model.pb" in names
    assert "keras_geo/bundled_model_card.json" in names


def test_wheel_ships_only_the_user_benchmarks(wheel):
    names = {n for n in wheel.namelist() if n.startswith("keras_geo/bench/")}
    assert {"keras_geo/bench/input.py", "keras_geo/bench/train.py"} <= names
    for study in ("baseline", "report", "scaling", "fake_kaggle", "storage", "cache"):
        assert f"keras_geo/bench/{study}.py" not in names


def test_the_quick_starts_first_command_installs_what_its_app_line_needs():
    """A reader runs command 1, then `keras-geo app`: the app's extra must come with command 1."""
    import configparser
    import re

    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL)
    first_command = blocks[0].splitlines()[0]
    assert "keras-geo demo" in first_command
    app_lines = [line.split("#")[0].strip() for line in blocks[1].splitlines()]
    assert {"keras-geo app", "keras-geo app --model runs/demo"} <= set(app_lines)
    (extras,) = re.findall(r"pip install '\.\[([\w,]+)\]'", first_command)
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = setup["options.extras_require"]
    installed = " ".join(declared[name] for name in extras.split(","))
    for module in ("gradio", "fastapi", "uvicorn"):  # What `keras-geo app` checks for.
        assert module in installed, module
