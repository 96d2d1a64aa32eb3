"""Feature extraction: ResNet50 frozen, a new softmax head trained (paper: 40.3%).

Command:

    keras-geo train --experiment feature_extraction --run-dir runs/feature_extraction

Paper (top20, test split): 40.3% accuracy. The authors' hyperparameters:
Adam with decoupled weight decay, learning rate 1e-3, weight decay 1e-4,
batch 180, alpha 2.5 (their distance loss), 10 epochs, ImageNet weights,
augmentation with random horizontal flips. Faithful to that, the head trains
on augmented images (`cache_features=False`); `--hparams` with
`{"cache_features": true}` trains it on cached features instead (minutes on
CPU, no augmentation).
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/top20",
        weights="imagenet",
        image_size=224,
        epochs_frozen=10,
        epochs_finetune=0,
        batch_size=180,
        learning_rate=1e-3,
        weight_decay=1e-4,
        loss="haversine",
        alpha=2.5,
        flip=True,
        cache_features=False,
    )
