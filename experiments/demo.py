"""Demo: the whole pipeline on the synthetic dataset, a model that learns, no download.

Command:

    keras-geo demo   # builds geoguessr/synthetic if needed, then as below
    keras-geo data build --dataset geoguessr/synthetic
    keras-geo train --experiment demo --run-dir runs/demo

No paper number: the synthetic scenes (`geoguessr/synthetic` 1.2.0: 20
countries, 44 / 10 / 50 drawn scenes each for train / validation / test,
so 880 / 200 / 1,000 images) only check that everything runs and learns.

Recipe: EfficientNetV2B0 at 32 px from random weights (no download), no
frozen phase (random features carry nothing), 24 epochs fine-tuning every
layer with BatchNorm training (`finetune_stages="all"`: frozen random
BatchNorm statistics make fine-tuning diverge), batch 16, AdamW 3e-3 with
one warm-up epoch then cosine decay, plain cross-entropy, no flips, whole
frames.

Measured (2026-12-04, the 2-core AMD EPYC this project is developed on;
`keras-geo train --experiment demo --seed N`, test accuracy on the 1,000
test scenes, chance 5%):

| recipe                    | seed 0 | seed 1 | seed 2 | seed 3 |
|---------------------------|-------:|-------:|-------:|-------:|
| 64 px, 11 epochs (before) | 65.0%  | 66.2%  | 54.8%  |        |
| 48 px, 16 epochs          | 71.1%  | 72.2%  | 62.7%  | 66.6%  |
| **32 px, 24 epochs**      | 64.0%  | 64.5%  | 63.6%  | 64.2%  |

The 64 px recipe fell under 60% on seed 2 (its best-validation epoch was
still learning when the 11 epochs ended). Of the two that cleared 60% on
every seed, 32 px is kept: its four seeds lie within 0.9 points of each
other (63.6-64.5%), where 48 px spreads over 9.5 points (62.7-72.2%), so a
CPU that rounds differently is likelier to stay above 60% with it; it also
costs less CPU (253 s against 270 s of user time for the whole demo).
`/usr/bin/time keras-geo demo` from an empty data dir (the dataset build
included): 64.0% (seed 0, the same figure as the training run above), **3 min
53 s wall**, 253 s user and 34 s system CPU, on this machine with no other
job of ours running (1-minute load average 1.3 at the start); an epoch takes
6-11 s, the first 23 s (TensorFlow tracing the step; see
`keras_geo.compat.keras_adamw` and `benchmarks/first_step.py`). That is over
the 3 minutes aimed at.
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/synthetic",
        weights="none",
        backbone="efficientnetv2b0",
        image_size=32,
        epochs_frozen=0,  # Random features carry nothing: the CPU goes to fine-tuning.
        epochs_finetune=24,
        finetune_stages="all",
        batch_size=16,
        learning_rate=3e-3,
        finetune_learning_rate=3e-3,
        lr_schedule="cosine",
        warmup_epochs=1,
        weight_decay=1e-4,
        loss="crossentropy",
        flip=False,
        crop_min_area=1.0,  # The whole frame (and the rotation of 5 degrees at most).
        cache_features=True,
    )
