"""Demo: the whole pipeline on the synthetic dataset, minutes on 2 CPU cores.

Command:

    keras-geo demo   # builds geoguessr/synthetic if needed, then as below
    keras-geo data build --config synthetic
    keras-geo train --experiment demo --run-dir runs/demo

No paper number: the synthetic scenes (20 countries, 50 drawn images each)
only check that everything runs and learns. Random initial weights (no
download), 32 px, both phases: 40 cheap frozen epochs on cached features,
then one fine-tuning epoch (conv5 backprop is the slow part on CPU).
Measured (2 shared CPU cores, about 3 minutes): frozen phase 25% test
accuracy, 5x the 5% chance level. Fine-tuning randomly initialised conv5
layers at the paper's learning rate diverges within the epoch, so the run
keeps the frozen phase's weights (`model.json` says which); with ImageNet
weights fine-tuning is the better phase.
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/synthetic",
        weights="none",
        image_size=32,
        epochs_frozen=40,  # on cached features: about a second each
        epochs_finetune=1,  # the costly part on CPU
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-4,
        loss="haversine",
        alpha=2.5,
        flip=False,
        cache_features=True,
    )
