"""One writer per run directory and per data dir (`keras_geo.locks`)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import synthetic_argv

from keras_geo import locks, runs
from keras_geo.cli.main import main
from keras_geo.errors import UserError

TINY = "--weights none --image-size 32 --epochs-frozen 1 --epochs-finetune 0 --batch-size 64"
HOLD = """
import sys
from keras_geo import locks
directory, flag, *command = sys.argv[1:]
sys.argv = ["keras-geo", *command]
with locks.exclusive(directory, flag):
    print("held", flush=True)
    sys.stdin.read()  # Until the test closes stdin (or kills this process).
"""


class Holder:
    """Another process holding a directory's lock, as a first writer would."""

    def __init__(self, directory, flag, *command):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(directory), flag, *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline() == "held\n"

    def finish(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


def _refusal(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_second_train_is_refused_naming_the_first(synthetic_data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = synthetic_argv("train", synthetic_data_dir, "--run-dir", str(run_dir), *TINY.split())
    first = Holder(run_dir, "--run-dir", "train", "--run-dir", str(run_dir), "--learning-rate", "1")
    assert main([*argv, "--learning-rate", "0.01"]) == 2
    err = _refusal(capsys)
    assert err.startswith(f"keras-geo: error: --run-dir {run_dir} is in use by another keras-geo ")
    assert f"(pid {first.process.pid} on " in err
    assert f"keras-geo train --run-dir {run_dir} --learning-rate 1): wait for it" in err
    assert sorted(p.name for p in run_dir.iterdir()) == [locks.LOCK_NAME]  # Nothing written.
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 2  # Evaluate writes there too.
    assert "is in use by another keras-geo process" in _refusal(capsys)

    first.kill()  # A killed writer holds nothing: its stale file is no lock.
    assert (run_dir / locks.LOCK_NAME).exists()
    assert main([*argv, "--learning-rate", "0.01"]) == 0
    assert runs.stored_config(run_dir).learning_rate == 0.01
    assert not (run_dir / locks.LOCK_NAME).exists()  # Released with the command.


def test_a_second_build_keeps_the_first_ones_folder(tmp_path, capsys):
    data_dir = tmp_path / "data"
    in_progress = data_dir / "incomplete.keras_geo.synthetic.0123456789abcdef"
    in_progress.mkdir(parents=True)  # What the first build is writing.
    first = Holder(data_dir, "--data-dir", "data", "build", "--data-dir", str(data_dir))
    argv = ["data", "build", "--config", "synthetic", "--data-dir", str(data_dir)]
    assert main(argv) == 2
    err = _refusal(capsys)
    assert f"--data-dir {data_dir} is in use by another keras-geo process (pid " in err
    assert in_progress.is_dir()
    first.finish()
    assert main(argv) == 0  # Now the only writer: it also clears what the first left.
    assert not in_progress.exists() and not (data_dir / locks.LOCK_NAME).exists()


def test_a_real_second_writer_waits_for_nothing(synthetic_data_dir, tmp_path, capsys):
    """Two `keras-geo train` processes: the second is refused while the first trains."""
    run_dir = tmp_path / "run"
    argv = synthetic_argv("train", synthetic_data_dir, "--run-dir", str(run_dir), *TINY.split())
    long = [*argv, "--epochs-frozen", "200", "--no-cache-features"]
    first = subprocess.Popen(
        [sys.executable, "-m", "keras_geo.cli.main", *long],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (run_dir / runs.CONFIG_FILE).exists():  # It holds the lock, then writes.
            assert first.poll() is None, "the first train ended early"
            time.sleep(0.2)
        assert main([*argv, "--learning-rate", "0.01"]) == 2
        assert f"(pid {first.pid} on " in _refusal(capsys)
        assert runs.stored_config(run_dir).learning_rate == 1e-3  # The first's config only.
    finally:
        first.kill()
        first.wait(timeout=60)


def test_the_lock_is_reentrant_and_leaves_no_trace(tmp_path):
    run_dir = tmp_path / "new" / "run"
    with locks.exclusive(run_dir, "--run-dir"):
        assert (run_dir / locks.LOCK_NAME).read_text().startswith(f"pid {os.getpid()} on ")
        with locks.exclusive(run_dir, "--run-dir"):  # `train` evaluating its own run.
            pass
        assert (run_dir / locks.LOCK_NAME).exists()
    assert not (tmp_path / "new").exists()  # Created for the lock, left empty: removed.
    with locks.exclusive(run_dir, "--run-dir"):
        (run_dir / "config.json").write_text("{}")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json"]


def test_an_unwritable_place_is_left_to_the_commands_own_check(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    with locks.exclusive(path, "--run-dir"):  # No lock possible, no error from the lock.
        pass
    assert path.read_text() == "x"
    holder = Holder(tmp_path, "--data-dir", "data", "build")
    try:
        with pytest.raises(UserError, match="is in use by another keras-geo process"):
            with locks.exclusive(tmp_path, "--data-dir"):
                pass
    finally:
        holder.finish()
