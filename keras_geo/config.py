"""The resolved configuration of one training run.

`TrainConfig` is frozen: experiments (`keras_geo.experiments`) build one,
command-line flags and `--hparams` files override fields with
`TrainConfig.replace`, and the run directory stores it as `config.json`.
Unknown or mistyped field names raise instead of being ignored.
"""

import dataclasses
import json
from typing import Literal

from keras_geo.errors import UserError

MIN_IMAGE_SIZE = 32  # The smallest input keras.applications.ResNet50 accepts.


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run trains and how.

    Defaults are the paper's (the authors' code: Adam, lr 1e-3, weight decay
    1e-4, batch 180, alpha 2.5, 10 frozen epochs, fine-tuning of conv5).
    """

    dataset: str = "geoguessr/top20"  # TFDS name, `geoguessr/<config>`.
    data_dir: str | None = None  # TFDS data dir; None: TFDS' default.
    weights: str = "imagenet"  # "imagenet", "none", or a local .h5 path.
    image_size: int = 224  # Square model input, pixels.
    epochs_frozen: int = 10  # Feature extraction: backbone frozen.
    epochs_finetune: int = 10  # Fine-tuning: conv5_* trainable.
    batch_size: int = 180
    learning_rate: float = 1e-3  # Adam, both phases (as the authors).
    weight_decay: float = 1e-4  # Decoupled (AdamW).
    loss: Literal["haversine", "crossentropy"] = "haversine"
    alpha: float = 2.5  # Weight of the expected-distance term.
    tau_km: float | None = None  # Haversine label smoothing; None: off.
    flip: bool = True  # Random horizontal flip (swaps the driving side).
    cache_features: bool = True  # Frozen phase on cached backbone features.
    mixed_precision: bool = False
    # multiworker: MultiWorkerMirroredStrategy over the TF_CONFIG cluster.
    strategy: Literal["default", "mirrored", "multiworker"] = "default"
    seed: int = 0
    data_service: str | None = dataclasses.field(
        default=None,
        metadata={"help": "tf.data service dispatcher grpc://HOST:PORT for image epochs"},
    )

    def __post_init__(self):
        self._check("image_size", self.image_size >= MIN_IMAGE_SIZE, f">= {MIN_IMAGE_SIZE}")
        self._check("epochs_frozen", self.epochs_frozen >= 0, ">= 0")
        self._check("epochs_finetune", self.epochs_finetune >= 0, ">= 0")
        self._check("batch_size", self.batch_size >= 1, ">= 1")
        self._check("learning_rate", self.learning_rate > 0, "> 0")
        self._check("weight_decay", self.weight_decay >= 0, ">= 0")
        self._check("alpha", self.alpha >= 0, ">= 0")
        self._check("tau_km", self.tau_km is None or self.tau_km > 0, "> 0 or None")
        self._check(
            "loss", self.loss in ("haversine", "crossentropy"), "'haversine' or 'crossentropy'"
        )
        self._check(
            "data_service",
            self.data_service is None or self.data_service.count(":") >= 1,
            "None or the dispatcher's address grpc://HOST:PORT",
        )
        self._check(
            "data_service",
            not (self.data_service and self.strategy == "multiworker"),
            "None with strategy='multiworker' (not supported together yet)",
        )
        self._check(
            "strategy",
            self.strategy in ("default", "mirrored", "multiworker"),
            "'default', 'mirrored' or 'multiworker'",
        )

    def _check(self, name, ok, rule):
        if not ok:
            value = getattr(self, name)
            raise UserError(f"`{name}` must be {rule}. Received: {name}={value!r}")

    def replace(self, **overrides):
        """Returns a copy with `overrides` applied; unknown names raise `UserError`."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserError(f"Unknown config field(s) {unknown}. Known fields: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls().replace(**json.load(f))

    @property
    def config_name(self):
        """The TFDS builder config, e.g. "top20" for "geoguessr/top20"."""
        return self.dataset.split("/", 1)[1] if "/" in self.dataset else "top20"
