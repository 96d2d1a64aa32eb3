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

from keras_geo.experiments import finetune_haversine


def config():
    # The authors' recipe without its fine-tuning phase; the head sees augmented images.
    return finetune_haversine.config().replace(epochs_finetune=0, cache_features=False)
