"""`keras-geo data build --num-workers N`: same dataset whatever N; Ctrl-C safe."""

import json
import os

import pytest
import tensorflow_datasets as tfds

from keras_geo import datasets
from tfds_geoguessr.geoguessr import parallel
from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels
from tfds_geoguessr.geoguessr.make_dummy_data import write_kaggle_folder

TOP20 = read_labels("labels_top20.txt")


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
    """4 frames per top20 country, plus one undecodable and one empty file."""
    root = write_kaggle_folder(tmp_path_factory.mktemp("kaggle"), {c: 4 for c in TOP20})
    (root / "Italy" / "truncated.jpg").write_bytes(
        (root / "Italy").joinpath(sorted(os.listdir(root / "Italy"))[0]).read_bytes()[:700]
    )
    (root / "Spain" / "notes.jpg").write_bytes(b"not an image")
    return root


def _examples(data_dir):
    """{split: [(file_name, label, jpeg bytes)]} in stored order."""
    builder = datasets.builder("top20", data_dir)
    out = {}
    for split in ("train", "validation", "test"):
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        out[split] = [
            (ex["file_name"], int(ex["label"]), ex["image"]) for ex in ds.as_numpy_iterator()
        ]
    return out


def test_one_and_two_workers_build_identical_datasets(manual_dir, tmp_path):
    one = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "a", num_workers=1)
    two = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "b", num_workers=2)

    assert _examples(tmp_path / "a") == _examples(tmp_path / "b")
    for report in (one, two):
        report.pop("path")
        report.pop("source")
    assert one == two
    assert {item["file"] for item in two["skipped"]} == {"Italy/truncated.jpg", "Spain/notes.jpg"}
    assert sum(two["num_examples"].values()) == 4 * len(TOP20)


def test_interrupted_parallel_build_leaves_nothing_that_loads(manual_dir, tmp_path, monkeypatch):
    """A KeyboardInterrupt mid-build: no prepared dataset, no worker left alive."""
    from tfds_geoguessr.geoguessr import geoguessr_dataset_builder as module

    original = parallel.ordered_map

    def interrupt_after_three(function, items, num_workers, **kwargs):
        results = original(function, items, num_workers, **kwargs)
        try:
            for index, result in enumerate(results):
                if index == 3:
                    raise KeyboardInterrupt
                yield result
        finally:
            results.close()  # as when the interrupted generator is collected

    monkeypatch.setattr(module.parallel, "ordered_map", interrupt_after_three)
    before = _descendants()
    with pytest.raises(KeyboardInterrupt):
        datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path, num_workers=2)

    assert not datasets.builder("top20", tmp_path).is_prepared()
    # The pool's workers are gone; at most the fork server (a child) stays.
    assert _descendants() - before <= _children()
    monkeypatch.undo()
    report = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path, num_workers=2)
    assert sum(report["num_examples"].values()) == 4 * len(TOP20)
    assert (
        json.loads(
            (datasets.builder("top20", tmp_path).data_path / "build_report.json").read_text()
        )["num_examples"]
        == report["num_examples"]
    )


def test_ordered_map_keeps_order_and_bounds_the_read_ahead():
    read = []

    def items():
        for i in range(200):
            read.append(i)
            yield i

    results = parallel.ordered_map(abs, items(), 2, chunksize=2)
    assert next(results) == 0
    assert len(read) <= 4 * 2 * 2 + 2  # the window, not the whole input
    assert list(results) == list(range(1, 200))


def test_num_workers_must_be_positive(tmp_path):
    from keras_geo.errors import UserError

    with pytest.raises(UserError, match="--num-workers"):
        datasets.build("synthetic", data_dir=tmp_path, num_workers=0)


def _children(pid=None):
    pid = pid or os.getpid()
    path = f"/proc/{pid}/task/{pid}/children"
    if not os.path.exists(path):
        pytest.skip("needs /proc (Linux)")
    with open(path) as f:
        return {int(child) for child in f.read().split()}


def _descendants(pid=None):
    """Pids of every live process below this one (the fork server's workers too)."""
    children = _children(pid)
    return children.union(*(_descendants(child) for child in children))


def test_cli_refuses_zero_workers(tmp_path, capsys):
    from keras_geo.cli.main import main

    code = main(
        ["data", "build", "--dataset", "geoguessr/synthetic", "--data-dir", str(tmp_path)]
        + ["--num-workers", "0"]
    )
    assert code == 2
    assert "--num-workers must be >= 1" in capsys.readouterr().err
