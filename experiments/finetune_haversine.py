"""Fine tuning with the great-circle distance loss (paper: 72.5%).

Command:

    keras-geo train --experiment finetune_haversine --run-dir runs/finetune_haversine

Paper (top20, test split): 72.5% accuracy, the paper's headline result.
Hyperparameters from the authors' random search: Adam with decoupled weight
decay, learning rate 1e-3, weight decay 1e-4, batch 180, alpha 2.5, random
horizontal flips on. After the search "we trained for 40 epochs": here the
fine-tuning phase (`conv5_*` trainable, BatchNorm frozen) runs 40 epochs,
after 10 feature-extraction epochs on cached backbone features that warm up
the head (our addition; cheap, no augmentation). Our loss term is the
differentiable expected distance `alpha * sum_k p_k D[y, k] / max(D)`, not
the authors' zero-gradient argmax version.
"""

from keras_geo.config import TrainConfig


def config():
    return TrainConfig(
        dataset="geoguessr/top20",
        weights="imagenet",
        image_size=224,
        epochs_frozen=10,
        epochs_finetune=40,
        batch_size=180,
        learning_rate=1e-3,
        weight_decay=1e-4,
        loss="haversine",
        alpha=2.5,
        flip=True,
        cache_features=True,
    )
