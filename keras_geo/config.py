"""The resolved configuration of one training run.

`TrainConfig` is frozen: experiments (`keras_geo.experiments`) build one,
command-line flags and `--hparams` files override fields with
`TrainConfig.replace`, and the run directory stores it as `config.json`.
Unknown or mistyped field names raise instead of being ignored.
"""

import dataclasses
import json
import math
import typing
from typing import Literal

from keras_geo import backbones, paths
from keras_geo.errors import UserError

MIN_IMAGE_SIZE = 32  # The smallest input the keras.applications backbones accept.
# The largest: 4.6x the paper's 224 px, whose activations take 21x the memory;
# beyond is a typo that would only end in the out-of-memory killer.
MAX_IMAGE_SIZE = 1024
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit.
LR_SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")


PHASES = ("frozen", "finetune")  # Training order: feature extraction, then fine-tuning.


def _field(default, help):
    """A dataclass field whose `help` becomes its command-line help (`keras_geo.cli.flags`)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run trains and how.

    Defaults are the paper's (the authors' code: Adam, lr 1e-3, weight decay
    1e-4, batch 180, alpha 2.5, 10 frozen epochs, fine-tuning of conv5). Each
    field's `metadata["help"]` is its command-line help; choices are `Literal`
    annotations. `keras_geo.cli.flags` turns every field into a flag.
    """

    dataset: str = _field("geoguessr/top20", "TFDS name geoguessr/<config> (top20, all, synthetic)")
    data_dir: str | None = _field(None, "TFDS data dir (where `keras-geo data build` wrote it)")
    weights: str = _field(
        "imagenet", "imagenet, none, or the path of a local no-top .h5 of the backbone's weights"
    )
    image_size: int = _field(224, "square input size in pixels (>= 32)")
    epochs_frozen: int = _field(10, "feature-extraction epochs, backbone frozen (0 skips)")
    epochs_finetune: int = _field(
        10, "fine-tuning epochs: the backbone's last --finetune-stages stages train too (0 skips)"
    )
    batch_size: int = _field(180, "batch size")
    learning_rate: float = _field(
        1e-3, "AdamW learning rate of both phases, as the authors (see --finetune-learning-rate)"
    )
    weight_decay: float = _field(1e-4, "AdamW decoupled weight decay")
    loss: Literal["haversine", "crossentropy"] = _field(
        "haversine", "haversine: cross-entropy + alpha x expected great-circle distance"
    )
    alpha: float = _field(2.5, "weight of the expected great-circle distance term")
    tau_km: float | None = _field(None, "haversine label smoothing temperature in km (off)")
    flip: bool = _field(True, "random horizontal flip (it swaps the driving side)")
    cache_features: bool = _field(True, "frozen phase on cached backbone features, not images")
    mixed_precision: bool = _field(False, "mixed_float16 compute (for GPUs)")
    strategy: Literal["default", "mirrored", "multiworker"] = _field(
        "default",
        "mirrored: tf.distribute over all local GPUs; multiworker: over the machines of "
        "TF_CONFIG (run the same command on each)",
    )
    seed: int = _field(0, "random seed (weights, augmentation, order of trials)")
    # Beyond the paper: every default below is the paper's recipe.
    backbone: Literal[backbones.NAMES] = _field("resnet50", "keras.applications backbone")
    finetune_stages: str = _field(
        "1", "backbone stages trained in fine-tuning: N (1 = the last) or all"
    )
    finetune_learning_rate: float | None = _field(
        None, "fine-tuning learning rate (default: --learning-rate)"
    )
    lr_schedule: Literal[LR_SCHEDULES] = _field("constant", "learning rate over each phase")
    warmup_epochs: int = _field(0, "linear warm-up epochs at the start of each phase")
    crop_min_area: float = _field(0.08, "smallest random training crop, fraction of the frame area")
    class_weight: Literal[CLASS_WEIGHTS] = _field(
        "none", "loss weight per country: none, balanced (1 / frequency) or sqrt"
    )
    data_service: str | None = _field(
        None, "tf.data service dispatcher grpc://HOST:PORT for image epochs"
    )

    def __post_init__(self):
        self._check(
            "dataset",
            self.dataset.startswith("geoguessr/") and self.dataset.count("/") == 1,
            "geoguessr/<config> (top20, all or synthetic)",
        )
        self._check(
            "image_size",
            MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE,
            f"from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}",
        )
        self._check("epochs_frozen", self.epochs_frozen >= 0, ">= 0")
        self._check("epochs_finetune", self.epochs_finetune >= 0, ">= 0")
        self._check("batch_size", self.batch_size >= 1, ">= 1")
        self._check("learning_rate", _finite(self.learning_rate) and self.learning_rate > 0, "> 0")
        self._check("weight_decay", _finite(self.weight_decay) and self.weight_decay >= 0, ">= 0")
        self._check("alpha", _finite(self.alpha) and self.alpha >= 0, ">= 0")
        self._check(
            "tau_km",
            self.tau_km is None or (_finite(self.tau_km) and self.tau_km > 0),
            "> 0 or None",
        )
        for name in ("loss", "strategy", "backbone", "lr_schedule", "class_weight"):
            allowed = choices(name)
            self._check(
                name, getattr(self, name) in allowed, "one of " + ", ".join(map(repr, allowed))
            )
        self._check("seed", 0 <= self.seed <= MAX_SEED, f"from 0 to {MAX_SEED}")
        object.__setattr__(self, "finetune_stages", str(self.finetune_stages))
        stages = backbones.BACKBONES.get(self.backbone).num_stages
        self._check(
            "finetune_stages",
            self.finetune_stages == "all"
            or (self.finetune_stages.isdigit() and 1 <= int(self.finetune_stages) <= stages),
            f"1-{stages} or 'all' ({self.backbone} has {stages} stages)",
        )
        self._check(
            "finetune_learning_rate",
            self.finetune_learning_rate is None
            or (_finite(self.finetune_learning_rate) and self.finetune_learning_rate > 0),
            "> 0 or None",
        )
        self._check("warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        self._check("crop_min_area", 0 < self.crop_min_area <= 1, "in (0, 1]")  # Not nan.
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

    def _check(self, name, ok, rule):
        if not ok:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                rule += " and finite"
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
        paths.write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls().replace(**json.load(f))

    @property
    def phase_learning_rate(self):
        """The learning rate of each phase: `{"frozen": ..., "finetune": ...}`."""
        return {
            "frozen": self.learning_rate,
            "finetune": self.finetune_learning_rate or self.learning_rate,
        }


def _finite(value):
    """True for a finite number (`inf` would train on NaN from the first step)."""
    return math.isfinite(value)


def choices(name):
    """The allowed values of a `Literal`-annotated `TrainConfig` field, else None.

    >>> choices("loss")
    ('haversine', 'crossentropy')
    """
    annotation = typing.get_type_hints(TrainConfig)[name]
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
