"""Multi-worker training on a loopback TF_CONFIG cluster, and its Keras shim."""

import json
import sys

import pytest

from keras_geo import distribute
from keras_geo.compat import keras_multiworker
from keras_geo.errors import UserError

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import multiworker_helpers as helpers  # noqa: E402

WORKER_TIMEOUT_S = 240


def _run_cluster(commands, tmp_path, timeout=WORKER_TIMEOUT_S):
    """Runs one process per (command, env) to completion; returns exit codes."""
    with helpers.processes(commands, tmp_path) as started:
        try:
            return [process.wait(timeout=timeout) for process in started]
        except Exception:
            pytest.fail("cluster did not finish in time\n" + helpers.logs(tmp_path))


def test_keras_multiworker_fix_is_needed_and_works(tmp_path):
    """keras-team/keras#20585: fails when a Keras upgrade fixes or changes it.

    Each of two workers fits a tiny model three times: with no shim (Keras'
    own bug 1), with only the "build" half (bug 2), with both (trains).
    """
    configs = helpers.tf_configs(2)
    helper = str(helpers.__file__)
    commands = [
        ([sys.executable, helper, "toy", str(tmp_path / f"out{i}.json")], helpers.worker_env(c))
        for i, c in enumerate(configs)
    ]
    assert _run_cluster(commands, tmp_path) == [0, 0], helpers.logs(tmp_path)
    results = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)]
    for result in results:
        assert result["replicas"] == 2
        # If one of these two asserts fails, Keras changed: if `fit` now works
        # without the part, delete that part of keras_multiworker_fix.
        assert "Attempt to convert a value (PerReplica" in result["none"].get("error", ""), result
        assert "Invalid reduction dimension 0" in result["build"].get("error", ""), result
        assert "error" not in result["build+logs"], result
    # Both workers trained in sync: the same losses and the same weights.
    assert results[0]["build+logs"] == results[1]["build+logs"]
    losses = results[0]["build+logs"]["loss"]
    assert losses[1] < losses[0]


def test_fix_is_undone_after_the_block():
    import keras

    before = {name: keras.Model.__dict__.get(name) for name in ("train_step", "test_step")}
    with keras_multiworker.keras_multiworker_fix():
        assert keras.Model.__dict__.get("train_step") is not None
    after = {name: keras.Model.__dict__.get(name) for name in ("train_step", "test_step")}
    assert after == before


def test_chief_and_work_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief() and distribute.work_dir(tmp_path) == tmp_path
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert not distribute.is_chief()
    assert distribute.work_dir(tmp_path) == tmp_path / ".worker-worker-1"
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    )
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG"):
        distribute.task()


def test_multiworker_without_tf_config_is_a_user_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distribute.multiworker_strategy()


def test_two_workers_resume_after_a_kill_and_the_run_exports(synthetic_data_dir, tmp_path):
    """Two TF_CONFIG workers on loopback train one run directory.

    The frozen phase (features extracted by the chief, shared with worker 1)
    for 2 epochs. Worker 1 SIGKILLs itself after its first epoch; the chief
    fails (its peer stopped sending heartbeats); both are restarted with
    the same TF_CONFIG and finish: no finished epoch is redone, the worker's
    temp folder is gone, and the run loads, evaluates and exports.
    """
    run_dir = _kill_and_restart(synthetic_data_dir, tmp_path, finetune_steps=0)
    _check_run(run_dir, tmp_path)


@pytest.mark.slow
def test_two_workers_also_finetune_on_sharded_images(synthetic_data_dir, tmp_path):
    """As above, plus 2 fine-tuning steps through the image pipeline (ResNet50
    under the strategy: sharded tf.data input). Slow: 3-6 minutes on 2 shared
    cores; the toy cluster of the shim test covers `fit` on tf.data input."""
    run_dir = _kill_and_restart(synthetic_data_dir, tmp_path, finetune_steps=2)
    assert _epochs(run_dir, "finetune") == [0]
    _check_run(run_dir, tmp_path)


def _kill_and_restart(data_dir, tmp_path, finetune_steps):
    from keras_geo import runs

    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    command = [sys.executable, helpers.__file__, "train"]
    command += [str(run_dir), data_dir, str(logs / "killed"), str(finetune_steps)]
    configs = helpers.tf_configs(2)
    cluster = [(command, helpers.worker_env(c)) for c in configs]

    first = _run_cluster(cluster, logs)
    assert first[1] == -9 and first[0] != 0, helpers.logs(logs)  # killed; chief failed
    assert "a worker of the TF_CONFIG cluster failed" in helpers.logs(logs)
    assert _epochs(run_dir, "frozen") == [0]
    assert not (run_dir / runs.PHASES_DONE_FILE).exists()

    assert _run_cluster(cluster, logs) == [0, 0], helpers.logs(logs)
    assert _epochs(run_dir, "frozen") == [0, 1]  # epoch 0 once: resumed, not redone
    return run_dir


def _check_run(run_dir, tmp_path):
    """The chief's run dir is complete and clean, and loads, evaluates, exports."""
    from keras_geo import evaluation, export, runs

    assert set(runs.phases_done(run_dir)) == {"frozen", "finetune"}
    assert not list(run_dir.glob(".worker-*")), "the worker's temp folder is left"
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name], "half-written files"
    assert not list((run_dir / "backup").glob("*/*")), "backups of finished phases"
    model, class_names, config = runs.load_model(run_dir)
    assert runs.stored_run_config(run_dir)[1].strategy == "multiworker"
    assert len(class_names) == 20
    assert runs.metrics_path(run_dir, "test").is_file()
    metrics = evaluation.evaluate(run_dir, "validation", verbose=0)
    assert metrics["num_examples"] == 200  # geoguessr/synthetic 1.2.0: 10 scenes x 20 countries
    export.export_saved_model(
        model, class_names, tmp_path / "export" / "1", image_size=config.image_size
    )
    assert (tmp_path / "export" / "1" / "saved_model.pb").is_file()


def _epochs(run_dir, phase):
    """The `epoch` column of history/<phase>.csv, every row (repeats kept)."""
    import csv

    from keras_geo import runs

    path = runs.history_path(run_dir, phase)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]
