"""Distributed search in KerasTuner's chief/worker mode on localhost (CPU only).

The default test runs `keras_geo.tuning`'s tuner and report with a tiny dense
model in one chief and two worker processes; the slow one runs the real
`keras-geo tune` command (ResNet50, 32 px) the same way.
"""

import csv
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import pytest

TIMEOUT_S = 480  # The whole search; every process is killed after it.

TOY_SEARCH = """
import sys
sys.path.insert(0, sys.argv[2])  # tests/, for tuning_helpers.
import keras, numpy as np
from tuning_helpers import ToyHyperModel
from keras_geo import tuning

def metrics():
    top = keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top5_accuracy")
    return ["accuracy", top]  # A name KerasTuner takes as "min".

x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
tuner = tuning.make_tuner(
    ToyHyperModel(metrics=metrics), sys.argv[1], max_trials=3, seed=0, overwrite=False
)
best = tuning.run_tuner(tuner, x, y, validation_data=(x, y), epochs=1, verbose=0)
print("best hyperparameters:", best)
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tuner_id, command, port, log_path):
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
    }
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, log


def _wait(process, deadline):
    return process.wait(timeout=max(1.0, deadline - time.monotonic()))


def _run_chief_and_workers(command, tmp_path):
    """Runs one chief and two workers to the end; returns their logs."""
    port = _free_port()
    deadline = time.monotonic() + TIMEOUT_S
    started = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            log_path = tmp_path / f"{tuner_id}.log"
            started[tuner_id] = (*_start(tuner_id, command, port, log_path), log_path)
        for tuner_id in ("tuner0", "tuner1", "chief"):
            code = _wait(started[tuner_id][0], deadline)
            assert code == 0, started[tuner_id][2].read_text()[-3000:]
    finally:
        for process, log, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    return {tuner_id: path.read_text() for tuner_id, (_, _, path) in started.items()}


def _check_every_trial_ran_once(logs, tuning_dir):
    ran = []
    for tuner_id in ("tuner0", "tuner1"):
        found = re.findall(r"^Trial (\d+)/3 ", logs[tuner_id], re.M)  # KerasTuner's number.
        ran += [(str(int(n) - 1), tuner_id) for n in found]  # Its trial id.
    assert sorted(n for n, _ in ran) == ["0", "1", "2"], ran

    # The chief wrote the report of all of them.
    with open(tuning_dir / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in rows), rows
    assert {(r["trial_id"], r["tuner_id"]) for r in rows} == set(ran)
    assert (tuning_dir / "best.json").is_file()
    assert "best hyperparameters" in logs["chief"]
    # Workers report to the chief's oracle, which records every direction right.
    for trial_json in (tuning_dir / "search").glob("trial_*/trial.json"):
        metrics = json.loads(trial_json.read_text())["metrics"]["metrics"]
        assert metrics["val_top5_accuracy"]["direction"] == "max"
        assert metrics["val_loss"]["direction"] == "min"


def test_chief_and_two_workers_run_every_trial_exactly_once(tmp_path):
    tuning_dir = tmp_path / "shared" / "tuning"
    command = [
        sys.executable,
        "-c",
        TOY_SEARCH,
        str(tuning_dir),
        str(pathlib.Path(__file__).parent),
    ]
    logs = _run_chief_and_workers(command, tmp_path)
    _check_every_trial_ran_once(logs, tuning_dir)


@pytest.mark.slow
def test_keras_geo_tune_chief_and_two_workers(synthetic_data_dir, tmp_path):
    run_dir = tmp_path / "shared_run"
    args = [
        "--dataset", "geoguessr/synthetic", "--data-dir", synthetic_data_dir,
        "--run-dir", str(run_dir), "--max-trials", "3", "--epochs", "1",
        "--image-size", "32", "--weights", "none", "--max-examples", "16",
    ]  # fmt: skip
    command = [sys.executable, "-m", "keras_geo.cli.main", "tune", *args]
    logs = _run_chief_and_workers(command, tmp_path)
    _check_every_trial_ran_once(logs, run_dir / "tuning")
