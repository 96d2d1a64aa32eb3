"""What a model is: its name, the data it learned from and its measured test accuracy.

`predict` and the app show it next to every guess, so that nobody takes the
demo (drawn scenes) for a real guesser. It comes from a run directory
(`config.json` and `metrics/test.json`), the config embedded in a `.keras`
file, or the `model` entry of an export's `assets.extra/keras_geo_export.json`
(written by `keras_geo.export` from the run it exported).
"""

import dataclasses
import json
import math
import pathlib

from keras_geo import runs

SYNTHETIC_DATASET = "geoguessr/synthetic"
_TEST_METRICS = ("accuracy", "balanced_accuracy", "top5_accuracy")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A model's identity and measured quality.

    Attributes:
        name: What the model is called on the page and in answers (its path,
            or the bundled model's name).
        dataset: The TFDS name it was trained on (e.g. "geoguessr/top20"),
            or None when unknown.
        test: Its test-split metrics `accuracy`, `balanced_accuracy`,
            `top5_accuracy` (fractions) and `num_examples`, or None.
    """

    name: str
    dataset: str | None = None
    test: dict | None = None

    @property
    def synthetic(self) -> bool:
        """True for a model trained on drawn scenes (`geoguessr/synthetic`)."""
        return self.dataset == SYNTHETIC_DATASET

    def summary(self) -> str:
        """One line for people, e.g. "NAME: real screenshots (geoguessr/top20), test top-1 47.1%".

        A synthetic model's line says that its guesses are not real.
        """
        if self.synthetic:
            data = "SYNTHETIC drawn scenes (a demo: its guesses on real screenshots are chance)"
        elif self.dataset:
            data = f"real screenshots ({self.dataset})"
        else:
            data = "training data unknown"
        line = f"{self.name}: {data}"
        accuracy = (self.test or {}).get("accuracy")
        if accuracy is not None:
            split = "synthetic test" if self.synthetic else "test"
            line += f", {split} top-1 {100 * accuracy:.1f}%"
            balanced = self.test.get("balanced_accuracy")
            if balanced is not None:
                line += f" (balanced {100 * balanced:.1f}%)"
        return line

    def record(self) -> dict:
        """What an export stores of it (`dataset`, `test`); its name is where it is loaded from."""
        return {"dataset": self.dataset, "test": self.test}

    def to_json(self) -> dict:
        """A JSON-friendly dict: `name`, `dataset`, `synthetic`, `test`, `summary`."""
        return {
            "name": self.name,
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "test": self.test,
            "summary": self.summary(),
        }


def test_metrics(metrics: dict | None) -> dict | None:
    """The headline test metrics of a `metrics/test.json` dict (finite numbers only)."""
    if not isinstance(metrics, dict):
        return None
    kept = {
        name: float(metrics[name])
        for name in _TEST_METRICS
        if isinstance(metrics.get(name), int | float) and math.isfinite(metrics[name])
    }
    if not kept:
        return None
    if isinstance(metrics.get("num_examples"), int):
        kept["num_examples"] = metrics["num_examples"]
    return kept


def from_run(path, *, name=None, config=None) -> ModelInfo:
    """The info of a run directory or a `.keras` file (its folder's test metrics, if any).

    Args:
        path: The run directory or `.keras` file.
        name: Shown name; default: `path` as given.
        config: The run's `TrainConfig` if already loaded (else read from the folder).
    """
    path = pathlib.Path(path)
    folder = path if path.is_dir() else path.parent
    if config is None:
        config = runs.stored_config(folder)
    metrics = None
    metrics_file = runs.metrics_path(folder, "test")
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = None
    return ModelInfo(
        name=name or str(path),
        dataset=getattr(config, "dataset", None),
        test=test_metrics(metrics),
    )


def from_export_record(record, *, name) -> ModelInfo:
    """The info an export recorded (`keras_geo_export.json`'s `model` entry), or a bare one."""
    record = record if isinstance(record, dict) else {}
    dataset = record.get("dataset")
    return ModelInfo(
        name=name,
        dataset=dataset if isinstance(dataset, str) else None,
        test=test_metrics(record.get("test")),
    )
