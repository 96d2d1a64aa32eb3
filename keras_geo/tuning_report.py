"""Results of a tuning search: `trials.csv`, `best.json`, `search.png`.

Everything is read back from KerasTuner's project on disk
(`tuning/search/trial_*/trial.json`, with KerasTuner's own `Trial.load`) plus
the `keras_geo.json` record each trial's tuner writes beside it, so the
report is the same for a single process, a resumed search and a distributed
one, and can be rewritten at any time with `write_report(tuning_dir,
objective)`. Every row has every metric of `search_space.METRICS`; the
objective (`search_space.OBJECTIVES`) picks the best trial and is named on the
plot and in the progress lines.
"""

import csv
import glob
import json
import math
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from keras_tuner.engine.trial import Trial, TrialStatus  # noqa: E402

from keras_geo import paths  # noqa: E402
from keras_geo.search_space import (  # noqa: E402
    BEST_FILE,
    HYPERPARAMETERS,
    METRICS,
    OBJECTIVE,
    PLOT_FILE,
    PROJECT_NAME,
    REPORT_FILES,
    SIDE_CAR,
    TRIALS_FILE,
    bounds,
)

COLUMNS = (
    "trial",
    "trial_id",
    "status",
    *HYPERPARAMETERS,
    *METRICS,
    "best_epoch",
    "wall_time_s",
    "tuner_id",
    "message",
)

_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))(?::\s*(.*))?$"
)
_NOT_A_REASON = ("Graph execution error", "Detected at node", "[[", "Traceback")


def summarize_error(message, limit=300):
    """Returns "ExceptionName: reason" from a traceback (None for None).

    TensorFlow's "Graph execution error" preamble is skipped for the line that
    says what happened.

    Example: `summarize_error("Traceback ...\\n  File ...\\nValueError: bad")`
    returns `"ValueError: bad"`.
    """
    if not message:
        return None
    lines = [line.rstrip() for line in str(message).splitlines() if line.strip()]
    headers = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not headers:
        return _cut(lines[-1].strip(), limit)
    name, first = _EXCEPTION_LINE.match(lines[headers[-1]]).groups()
    return _headline(name, [first or ""] + lines[headers[-1] + 1 :], limit)


def describe_error(error, limit=300):
    """ "ExceptionName: reason" for an exception a trial raised (TensorFlow's preamble skipped).

    Example: `describe_error(ValueError("bad\\nmore"))` returns `"ValueError: bad"`.
    """
    return _headline(type(error).__name__, str(error).splitlines(), limit)


def _headline(name, lines, limit):
    """ "name: reason", the reason the first of `lines` not indented nor TensorFlow's preamble."""
    reasons = [
        line.strip()
        for line in lines
        if line.strip() and not line[0].isspace() and not line.startswith(_NOT_A_REASON)
    ]
    return _cut(f"{name}: {reasons[0]}" if reasons else name, limit)


def _cut(text, limit):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric_at_best_step(trial, name):
    history = trial.metrics.get_history(name) if trial.metrics.exists(name) else None
    if not history:
        return None
    at_best = [o for o in history if o.step == trial.best_step]
    return float((at_best or history)[-1].value[-1])


def _status(trial, record):
    if trial.status == TrialStatus.COMPLETED:
        return "COMPLETED"
    if record and record.get("status") in ("FAILED", "INVALID"):
        return "FAILED"
    return trial.status  # RUNNING: interrupted or still running.


def _row(trial_json):
    trial = Trial.load(trial_json)  # KerasTuner's own reader of its file.
    record_path = os.path.join(os.path.dirname(trial_json), SIDE_CAR)
    record = {}
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
    values = trial.hyperparameters.values
    row = {
        "trial": trial_number(trial.trial_id),
        "trial_id": trial.trial_id,
        "status": _status(trial, record),
    }
    row.update({name: values.get(name) for name in HYPERPARAMETERS})
    completed = row["status"] == "COMPLETED"
    for name in METRICS:
        row[name] = _metric_at_best_step(trial, name) if completed else None
    row["best_epoch"] = trial.best_step + 1 if completed else None
    row["wall_time_s"] = record.get("wall_time_s")
    row["tuner_id"] = record.get("tuner_id")
    row["message"] = (
        None if completed else (record.get("message") or summarize_error(trial.message))
    )
    return row


def trial_number(trial_id):
    """KerasTuner's number of a trial ("Trial 3 Complete"): its id (`trial_02`) plus one."""
    return int(trial_id) + 1


def load_trials(tuning_dir):
    """Returns one dict per trial (keys `COLUMNS`), ordered by trial id."""
    paths = glob.glob(os.path.join(tuning_dir, PROJECT_NAME, "trial_*", "trial.json"))
    rows = [_row(path) for path in paths]
    return sorted(rows, key=lambda row: int(row["trial_id"]))


def best_trial(rows, objective=OBJECTIVE):
    """The completed row with the highest `objective` (first on ties), or None."""
    completed = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None]
    completed = [r for r in completed if not math.isnan(r[objective])]
    return max(completed, key=lambda r: r[objective], default=None)


def write_trials_csv(tuning_dir, rows=None):
    """Writes `tuning_dir/trials.csv` and returns the rows."""
    rows = load_trials(tuning_dir) if rows is None else rows
    path = os.path.join(tuning_dir, TRIALS_FILE)
    with paths.atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return rows


def write_report(tuning_dir, objective=OBJECTIVE):
    """Writes trials.csv, best.json and search.png; returns the best hyperparameters.

    The best trial is the one with the highest `objective` (one of
    `search_space.OBJECTIVES`, the search's). `best.json` holds its
    TrainConfig field names only, so
    `TrainConfig().replace(**json.load(f))` and `keras-geo train --hparams`
    accept it. Returns None (and writes no best.json) if no trial completed.
    """
    rows = write_trials_csv(tuning_dir)
    best = best_trial(rows, objective)
    best_path = os.path.join(tuning_dir, BEST_FILE)
    if best is None:
        if os.path.exists(best_path):
            os.remove(best_path)
        return None
    hparams = {name: best[name] for name in HYPERPARAMETERS}
    hparams["batch_size"] = int(hparams["batch_size"])
    for name in ("learning_rate", "weight_decay", "alpha"):
        hparams[name] = float(hparams[name])
    paths.write_json(best_path, hparams, sort_keys=False)
    plot_search(rows, best, os.path.join(tuning_dir, PLOT_FILE), objective)
    return hparams


def remove_reports(tuning_dir):
    for name in REPORT_FILES:
        path = os.path.join(tuning_dir, name)
        if os.path.exists(path):
            os.remove(path)


def plot_search(rows, best, path, objective=OBJECTIVE):
    """`objective` against each hyperparameter, 4 panels, best trial starred."""
    done = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None]
    failed = [r for r in rows if r["status"] == "FAILED"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), sharey=True)
    for ax, name in zip(axes, HYPERPARAMETERS, strict=True):
        ax.scatter([r[name] for r in done], [r[objective] for r in done], label="trial")
        if failed:
            ax.scatter(
                [r[name] for r in failed],
                [0.0] * len(failed),
                marker="x",
                color="red",
                label="failed",
            )
        ax.scatter(
            [best[name]],
            [best[objective]],
            marker="*",
            s=250,
            color="orange",
            edgecolor="black",
            zorder=3,
            label=f"best (Trial {best['trial']})",
        )
        if name == "learning_rate":
            ax.set_xscale("log")
        elif name == "weight_decay":
            ax.set_xscale("symlog", linthresh=1e-5)
        ax.set_xlim(*_padded(name))
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{objective} (objective)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Random search for the best {objective}: "
        f"{len(done)} completed, {len(failed)} failed trials"
    )
    fig.tight_layout()
    try:
        with paths.atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress_line(
    *,
    trial_id,
    total,
    values,
    status,
    score,
    best_score,
    best_id,
    wall_time_s,
    message=None,
    objective=OBJECTIVE,
):
    """One line per finished trial, numbered as KerasTuner prints it, e.g.

    `Trial 3/30 COMPLETED batch_size=180 learning_rate=0.001
    weight_decay=0.0001 alpha=2.5 -> val_accuracy=0.4123 | best 0.4500
    (Trial 2) | 95.2 s` for the trial KerasTuner calls "Trial 3" (id 2,
    folder `trial_2`, or `trial_02` in a search of 10 trials or more).
    """
    hps = " ".join(f"{k}={_fmt(values.get(k))}" for k in HYPERPARAMETERS)
    if score is not None and status == "COMPLETED":
        result = f"{objective}={score:.4f}"
    else:
        result = message or ""
    if best_score is not None:
        best = f"best {best_score:.4f} (Trial {trial_number(best_id)})"
    else:
        best = "best -"
    number = f"{trial_number(trial_id)}/{total}"
    return f"Trial {number} {status} {hps} -> {result} | {best} | {wall_time_s} s"


def _padded(name):
    """The x range of a panel: the whole declared space, not just the samples."""
    low, high = bounds(name)
    if name in ("learning_rate", "weight_decay"):  # log and symlog axes
        return (low / 1.4 if low > 0 else -2e-6), high * 1.4
    return low - 0.04 * (high - low), high + 0.04 * (high - low)
