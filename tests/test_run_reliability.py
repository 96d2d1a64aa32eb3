"""Runs on full, read-only or odd disks, and odd requests: one line, nothing lost."""

import io
import json
import socket

import keras
import pytest
from PIL import Image
from train_helpers import synthetic_argv

from keras_geo import export, images, predict, runs, settings, tuning
from keras_geo.cli.main import main
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr import limits

CLASS_NAMES = ["France", "Japan", "United States"]


def _tiny_model(inputs=(8,)):
    model = keras.Sequential(
        [keras.Input(inputs), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _train_argv(run_dir, data_dir):
    tiny = "--weights none --image-size 32 --epochs-frozen 0 --epochs-finetune 0 --batch-size 64"
    return synthetic_argv("train", data_dir, "--run-dir", str(run_dir), *tiny.split())


def test_train_on_a_full_then_read_only_disk(tmpfs, synthetic_data_dir, capsys):
    disk = tmpfs("2m")
    run_dir = disk / "run"
    argv = _train_argv(run_dir, synthetic_data_dir)
    assert main(argv) == 1  # The first checkpoint (95 MB) does not fit.
    err = capsys.readouterr().err
    assert err.startswith(f"keras-geo: error: cannot write {run_dir}/checkpoints/frozen.weights.h5")
    assert err.count("\n") == 1 and "rerun the same command to resume" in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["class_names.json", "config.json"]

    import subprocess

    subprocess.run(["mount", "-o", "remount,size=600m", str(disk)], check=True)
    assert main(argv) == 0  # Freed: the same command finishes the run.
    capsys.readouterr()
    written = runs.metrics_path(run_dir, "test").read_text()

    tmpfs.read_only(disk)
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"keras-geo: error: --run-dir {run_dir} is not writable (Read-only file system in "
        f"{run_dir}): choose another --run-dir or make it writable.\n"
    )
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 1
    out, err = capsys.readouterr()
    printed = json.loads(out[out.index("{\n") :])  # After the progress bar.
    assert printed["num_examples"] == json.loads(written)["num_examples"]
    assert err.startswith("keras-geo: error: metrics and figures printed, not written: --run-dir")
    assert err.count("\n") == 1
    out_dir = disk / "export" / "1"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(out_dir)]) == 2
    assert "--out" in capsys.readouterr().err and not out_dir.exists()


def _config(**overrides):
    return TrainConfig(dataset="geoguessr/synthetic", weights="none").replace(**overrides)


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    run_dir = tmp_path / "run"
    runs.prepare_run_dir(_config(), run_dir)
    leftover = run_dir / "backup" / "frozen" / ".tmp-999-latest.weights.h5"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("killed mid-write")
    runs.prepare_run_dir(_config(), run_dir)
    assert not leftover.exists() and (run_dir / "config.json").is_file()


def test_a_run_dir_with_nothing_trained_takes_a_corrected_config(tmp_path):
    run_dir = tmp_path / "run"
    runs.prepare_run_dir(_config(weights="missing.h5"), run_dir)  # Failed before epoch 1.
    runs.prepare_run_dir(_config(), run_dir)
    assert runs.stored_config(run_dir) == _config()
    runs.history_path(run_dir, "frozen").parent.mkdir()
    runs.history_path(run_dir, "frozen").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(UserError, match="image_size: 224 -> 64.*--overwrite to start it afresh"):
        runs.prepare_run_dir(_config(image_size=64), run_dir)


def test_train_overwrite_deletes_the_training_outputs_only(tmp_path):
    run_dir = tmp_path / "run"
    runs.prepare_run_dir(_config(), run_dir)
    for name in ("history/frozen.csv", "checkpoints/frozen.weights.h5", "phases_done.json"):
        (run_dir / name).parent.mkdir(exist_ok=True)
        (run_dir / name).write_text("x")
    (run_dir / "tuning").mkdir()
    (run_dir / "tuning" / "best.json").write_text("{}")
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "checkpoints" / ".tmp-999-finetune.weights.h5").write_text("killed mid-write")
    runs.prepare_run_dir(_config(image_size=64), run_dir, overwrite=True)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "notes.txt", "tuning"]
    assert runs.stored_config(run_dir).image_size == 64


def _png(width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_pixel_limit_holds_in_predict_and_in_the_savedmodel(tmp_path, monkeypatch):
    out = tmp_path / "models" / "1"
    leftover = tmp_path / "models" / ".1.k1ll3d_x"  # A killed export's temporary folder.
    leftover.mkdir(parents=True)
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "1000")  # Baked into the export's graph.
    export.export_saved_model(_tiny_model((32, 32, 3)), CLASS_NAMES, out, image_size=32)
    assert not leftover.exists()
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    small.write_bytes(_png(30, 30))
    large.write_bytes(_png(50, 40))
    predictor = predict.load_predictor(out)
    assert predict.predict_file(predictor, small)["countries"]
    with pytest.raises(ValueError, match=r"^too large: 50x40 pixels \(0.0 MP\) is above"):
        predict.predict_file(predictor, large)  # Refused from the header, before decoding.
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "1000000")  # The export keeps its own limit.
    with pytest.raises(ValueError, match=r"^image too large: above the limit of 0.0 MP"):
        predict.predict_file(predictor, large)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_worker_without_a_chief_gives_up_in_one_line(tmp_path, monkeypatch, capsys):
    assert settings.chief_timeout() == 120
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(_free_port()))  # Nothing listens.
    monkeypatch.setenv(tuning.CHIEF_TIMEOUT_ENV, "1.5")
    argv = ["tune", "--dataset", "geoguessr/synthetic", "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "worker: waiting for the KerasTuner chief at 127.0.0.1:" in out
    assert err.startswith("keras-geo: error: no KerasTuner chief answered at 127.0.0.1:")
    assert "within 1.5 s" in err and err.count("\n") == 1
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "eighty")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "keras-geo: error: KERASTUNER_ORACLE_PORT must be a port number, 1-65535. "
        "Received: 'eighty'\n"
    )


def test_tune_run_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "run"
    path.write_text("x")
    assert main(["tune", "--dataset", "geoguessr/synthetic", "--run-dir", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"keras-geo: error: --run-dir {path} is a file, not a directory: pass a directory.\n"
    )


@pytest.mark.parametrize(
    "fmt, options",
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"exif": b"Exif\0\0"}),  # An extended (VP8X) header.
    ],
)
def test_the_savedmodel_reads_the_size_from_every_header(fmt, options):
    import tensorflow as tf

    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (1, 2, 3)).save(buffer, format=fmt, **options)
    assert int(images.declared_pixels(tf.constant(buffer.getvalue()))) == 2000
    fake = b"\x89PNG\r\n\x1a\n" + b"\xff" * 40  # A signature, then no real header.
    assert int(images.declared_pixels(tf.constant(fake))) == 0
