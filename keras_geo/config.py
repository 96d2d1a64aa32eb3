"""The resolved configuration of one training run.

`TrainConfig` is frozen: experiments (`keras_geo.experiments`) build one,
command-line flags and `--hparams` files override fields with
`TrainConfig.replace`, and the run directory stores it as `config.json`.
Unknown or mistyped field names raise instead of being ignored.
"""

import dataclasses
import json
from typing import Literal

from keras_geo import backbones
from keras_geo.errors import UserError

MIN_IMAGE_SIZE = 32  # The smallest input the keras.applications backbones accept.
LR_SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")


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
    strategy: Literal["default", "mirrored"] = "default"
    seed: int = 0
    # Beyond the paper: every default below is the paper's recipe.
    backbone: Literal[backbones.NAMES] = dataclasses.field(
        default="resnet50", metadata={"help": "keras.applications backbone"}
    )
    finetune_stages: str = dataclasses.field(
        default="1",
        metadata={"help": "backbone stages trained in fine-tuning: N (1 = the last) or all"},
    )
    finetune_learning_rate: float | None = dataclasses.field(
        default=None, metadata={"help": "fine-tuning learning rate (default: --learning-rate)"}
    )
    lr_schedule: Literal[LR_SCHEDULES] = dataclasses.field(
        default="constant", metadata={"help": "learning rate over each phase"}
    )
    warmup_epochs: int = dataclasses.field(
        default=0, metadata={"help": "linear warm-up epochs at the start of each phase"}
    )
    crop_min_area: float = dataclasses.field(
        default=0.08, metadata={"help": "smallest random training crop, fraction of the frame area"}
    )
    class_weight: Literal[CLASS_WEIGHTS] = dataclasses.field(
        default="none",
        metadata={"help": "loss weight per country: none, balanced (1 / frequency) or sqrt"},
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
        self._check("strategy", self.strategy in ("default", "mirrored"), "'default' or 'mirrored'")
        self._check("backbone", self.backbone in backbones.NAMES, _one_of(backbones.NAMES))
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
            self.finetune_learning_rate is None or self.finetune_learning_rate > 0,
            "> 0 or None",
        )
        self._check("lr_schedule", self.lr_schedule in LR_SCHEDULES, _one_of(LR_SCHEDULES))
        self._check("warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        self._check("crop_min_area", 0 < self.crop_min_area <= 1, "in (0, 1]")
        self._check("class_weight", self.class_weight in CLASS_WEIGHTS, _one_of(CLASS_WEIGHTS))

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
    def phase_learning_rate(self):
        """The learning rate of each phase: `{"frozen": ..., "finetune": ...}`."""
        return {
            "frozen": self.learning_rate,
            "finetune": self.finetune_learning_rate or self.learning_rate,
        }

    @property
    def config_name(self):
        """The TFDS builder config, e.g. "top20" for "geoguessr/top20"."""
        return self.dataset.split("/", 1)[1] if "/" in self.dataset else "top20"


def _one_of(choices):
    return "one of " + ", ".join(repr(choice) for choice in choices)
