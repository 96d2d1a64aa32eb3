"""Demo: the whole pipeline on the synthetic dataset, minutes on 2 CPU cores.

Command:

    keras-geo demo   # builds geoguessr/synthetic if needed, then as below
    keras-geo data build --config synthetic
    keras-geo train --experiment demo --run-dir runs/demo

No paper number: the synthetic scenes (20 countries, 50 drawn images each)
only check that everything runs and learns. Random initial weights (no
download), 64 px, both phases. Expected test accuracy: well above the 5%
chance level (see README for the measured value).
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/synthetic",
        weights="none",
        image_size=64,
        epochs_frozen=5,
        epochs_finetune=5,
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-4,
        loss="haversine",
        alpha=2.5,
        flip=False,
        cache_features=True,
    )
