"""`keras-geo tune` in KerasTuner's chief/worker mode on localhost (CPU only)."""

import csv
import os
import re
import socket
import subprocess
import sys
import time

TIMEOUT_S = 480  # The whole search; every process is killed after it.


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tuner_id, args, port, log_path):
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
    command = [sys.executable, "-m", "keras_geo.cli.main", "tune", *args]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, log


def _wait(process, deadline):
    return process.wait(timeout=max(1.0, deadline - time.monotonic()))


def test_chief_and_two_workers_run_every_trial_exactly_once(synthetic_data_dir, tmp_path):
    run_dir = tmp_path / "shared_run"
    args = [
        "--dataset", "geoguessr/synthetic", "--data-dir", synthetic_data_dir,
        "--run-dir", str(run_dir), "--max-trials", "3", "--epochs", "1",
        "--image-size", "32", "--weights", "none", "--max-examples", "16",
    ]  # fmt: skip
    port = _free_port()
    deadline = time.monotonic() + TIMEOUT_S
    started = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            log_path = tmp_path / f"{tuner_id}.log"
            started[tuner_id] = (*_start(tuner_id, args, port, log_path), log_path)
        for tuner_id in ("tuner0", "tuner1", "chief"):
            code = _wait(started[tuner_id][0], deadline)
            assert code == 0, started[tuner_id][2].read_text()[-3000:]
    finally:
        for process, log, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()

    # Every trial ran exactly once, on one of the workers.
    ran = []
    for tuner_id in ("tuner0", "tuner1"):
        log = started[tuner_id][2].read_text()
        ran += [(n, tuner_id) for n in re.findall(r"^trial (\d+)/3 ", log, re.M)]
    assert sorted(n for n, _ in ran) == ["1", "2", "3"], ran

    # The chief wrote the report of all of them.
    with open(run_dir / "tuning" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in rows), rows
    assert {r["tuner_id"] for r in rows} <= {"tuner0", "tuner1"}
    assert {(str(int(r["trial_id"]) + 1), r["tuner_id"]) for r in rows} == set(ran)
    assert (run_dir / "tuning" / "best.json").is_file()
    assert "best hyperparameters" in started["chief"][2].read_text()
