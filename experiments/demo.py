"""Demo: the whole pipeline on the synthetic dataset, minutes on 2 CPU cores.

Command:

    keras-geo demo   # builds geoguessr/synthetic if needed, then as below
    keras-geo data build --config synthetic
    keras-geo train --experiment demo --run-dir runs/demo

No paper number: the synthetic scenes (20 countries, 50 drawn images each)
only check that everything runs and learns. Random initial weights (no
download), 32 px, both phases: 60 cheap frozen epochs on cached features,
then one fine-tuning epoch (conv5 backprop is the slow part on CPU). With
random weights, learning rate 1e-3 makes fine-tuning diverge, hence 1e-4.
Expected test accuracy: several times the 5% chance level (the README gives
the measured value); random-init features are weak, ImageNet ones are not.
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/synthetic",
        weights="none",
        image_size=32,
        epochs_frozen=60,  # on cached features: about a second each
        epochs_finetune=1,  # the costly part on CPU
        batch_size=16,
        learning_rate=1e-4,  # 1e-3 makes fine-tuning random conv5 weights diverge
        weight_decay=1e-4,
        loss="haversine",
        alpha=2.5,
        flip=False,
        cache_features=True,
    )
