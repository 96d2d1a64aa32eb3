"""Fine tuning with plain cross-entropy (paper's authors: 58.5%).

Command:

    keras-geo train --experiment finetune_crossentropy \\
        --run-dir runs/finetune_crossentropy

Reported (top20, test split): 58.5% accuracy, from an author's project page
(the paper itself gives only the distance-loss number, 72.5%). Same schedule
and hyperparameters as `finetune_haversine` (10 frozen epochs on cached
features, 40 fine-tuning epochs, Adam lr 1e-3, weight decay 1e-4, batch 180,
flips on), with sparse categorical cross-entropy: the ablation of the loss.
"""

from keras_geo.experiments import finetune_haversine


def config():
    return finetune_haversine.config().replace(loss="crossentropy")
