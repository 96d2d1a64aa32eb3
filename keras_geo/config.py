"""The configuration of a training run, in two parts.

- `TrainConfig`, the recipe: what is trained (data, model, optimisation,
  loss, augmentation, seed). It identifies a run: resuming a run directory
  or a search compares it, field by field, and a search varies some of its
  fields (`keras_geo.search_space`).
- `Runtime`: where and how the recipe runs (the data's location, the input
  service, the distribution strategy, the numeric precision). It may change
  between two commands of one run; nothing compares it.

Both are frozen dataclasses: experiments (`keras_geo.experiments`) build a
`TrainConfig`, command-line flags (generated from the fields,
`keras_geo.cli.flags`) and `--hparams` files override fields with `replace`,
and a run directory stores both in `config.json`:

    {"recipe": {...TrainConfig fields...}, "runtime": {...Runtime fields...}}

Files written before the split hold one flat object of both parts' fields;
`from_dict` reads either. Unknown or mistyped field names, and values out of
range, raise `ValueError` (as Keras does: "... Received: name=value").
"""

import dataclasses
import json
import math
import typing
from typing import Literal

from keras_geo import backbones, paths

MIN_IMAGE_SIZE = 32  # The smallest input the keras.applications backbones accept.
# The largest: 4.6x the paper's 224 px, whose activations take 21x the memory;
# beyond is a typo that would only end in the out-of-memory killer.
MAX_IMAGE_SIZE = 1024
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit.
LR_SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")


PHASES = ("frozen", "finetune")  # Training order: feature extraction, then fine-tuning.


def epochs_field(phase):
    """The `TrainConfig` field holding the epochs of `phase`, e.g. "epochs_frozen"."""
    return f"epochs_{phase}"


def _field(default, help):
    """A dataclass field whose `help` becomes its command-line help (`keras_geo.cli.flags`)."""
    return dataclasses.field(default=default, metadata={"help": help})


class _Section:
    """What both parts share: validation messages, `replace`, JSON."""

    def _check(self, name, ok, rule):
        if not ok:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                rule += " and finite"
            raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")

    def _check_choices(self, *names):
        for name in names:
            allowed = choices(name, type(self))
            self._check(
                name, getattr(self, name) in allowed, "one of " + ", ".join(map(repr, allowed))
            )

    def replace(self, **overrides):
        """Returns a copy with `overrides` applied.

        Raises:
            ValueError: an unknown field name, or a value out of range.
        """
        known = field_names(type(self))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"Unknown {type(self).__name__} field(s) {unknown}. Known fields: {sorted(known)}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Section):
    """The recipe: everything that decides what a run trains.

    Defaults are the paper's (the authors' code: Adam, lr 1e-3, weight decay
    1e-4, batch 180, alpha 2.5, 10 frozen epochs, fine-tuning of conv5). Each
    field's `metadata["help"]` is its command-line help; choices are `Literal`
    annotations. `keras_geo.cli.flags` turns every field into a flag.
    """

    dataset: str = _field("geoguessr/top20", "TFDS name geoguessr/<config> (top20, all, synthetic)")
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
        self._check_choices("loss", "backbone", "lr_schedule", "class_weight")
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

    def to_json(self, path, runtime=None):
        """Writes `config.json` (`write_json`): this recipe and `runtime` (None: none)."""
        write_json(path, self, runtime)

    @classmethod
    def from_json(cls, path):
        """The recipe of a `config.json` file (either layout, `read_json`)."""
        return read_json(path)[0]

    def epochs(self, phase):
        """The epochs of `phase` ("frozen" or "finetune")."""
        return getattr(self, epochs_field(phase))

    @property
    def phase_learning_rate(self):
        """The learning rate of each phase: `{"frozen": ..., "finetune": ...}`."""
        return {
            "frozen": self.learning_rate,
            "finetune": self.finetune_learning_rate or self.learning_rate,
        }


@dataclasses.dataclass(frozen=True)
class Runtime(_Section):
    """Where and how a recipe runs: nothing here changes what is trained."""

    data_dir: str | None = _field(None, "TFDS data dir (where `keras-geo data build` wrote it)")
    data_service: str | None = _field(
        None, "tf.data service dispatcher grpc://HOST:PORT for image epochs"
    )
    strategy: Literal["default", "mirrored", "multiworker"] = _field(
        "default",
        "mirrored: tf.distribute over all local GPUs; multiworker: over the machines of "
        "TF_CONFIG (run the same command on each)",
    )
    mixed_precision: bool = _field(False, "mixed_float16 compute (for GPUs)")

    def __post_init__(self):
        self._check_choices("strategy")
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


def from_dict(value):
    """The `(TrainConfig, Runtime)` of a `config.json` object.

    Reads `{"recipe": {...}, "runtime": {...}}` (either part may be absent:
    its defaults) and the flat object of both parts' fields that files
    written before the split hold.

    Raises:
        TypeError: `value`, or a part of it, is not a dict.
        ValueError: an unknown field, or a value out of range.

    Example: `from_dict({"image_size": 64, "data_dir": "/data"})` gives
    `(TrainConfig(image_size=64), Runtime(data_dir="/data"))`.
    """
    if not isinstance(value, dict):
        raise TypeError(f"A run config must be a JSON object. Received: {type(value).__name__}")
    if "recipe" in value or "runtime" in value:
        parts = {"recipe": value.get("recipe", {}), "runtime": value.get("runtime", {})}
        unknown = sorted(set(value) - set(parts))
        if unknown:
            raise ValueError(f"Unknown config section(s) {unknown}. Known: ['recipe', 'runtime']")
        for name, part in parts.items():
            if not isinstance(part, dict):
                raise TypeError(f"`{name}` must be a JSON object. Received: {name}={part!r}")
    else:
        runtime = field_names(Runtime)
        parts = {
            "recipe": {k: v for k, v in value.items() if k not in runtime},
            "runtime": {k: v for k, v in value.items() if k in runtime},
        }
    return TrainConfig().replace(**parts["recipe"]), Runtime().replace(**parts["runtime"])


def to_dict(config, runtime=None):
    """The `config.json` object of a recipe (and its runtime, unless None)."""
    value = {"recipe": config.to_dict()}
    if runtime is not None:
        value["runtime"] = runtime.to_dict()
    return value


def write_json(path, config, runtime=None):
    """Writes `to_dict(config, runtime)` to `path`, atomically."""
    paths.write_json(path, to_dict(config, runtime))


def read_json(path):
    """The `(TrainConfig, Runtime)` of a `config.json` file (either layout)."""
    with open(path) as f:
        return from_dict(json.load(f))


def field_names(cls):
    """The field names of `TrainConfig` or `Runtime`, as a set."""
    return {field.name for field in dataclasses.fields(cls)}


def _finite(value):
    """True for a finite number (`inf` would train on NaN from the first step)."""
    return math.isfinite(value)


def choices(name, cls=None):
    """The allowed values of a `Literal`-annotated field, else None.

    Args:
        name: A field of `TrainConfig` or `Runtime`.
        cls: The class declaring it; None: whichever does.

    >>> choices("loss")
    ('haversine', 'crossentropy')
    """
    cls = cls or (Runtime if name in field_names(Runtime) else TrainConfig)
    annotation = typing.get_type_hints(cls)[name]
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
