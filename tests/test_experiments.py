"""The paper's experiments load as TrainConfigs with the paper's settings."""

import pytest

from keras_geo import experiments
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError


@pytest.mark.parametrize("name", experiments.NAMES)
def test_every_experiment_loads_and_documents_its_command(name):
    config = experiments.get(name)
    assert isinstance(config, TrainConfig)
    module = __import__(f"keras_geo.experiments.{name}", fromlist=["config"])
    assert f"--experiment {name}" in module.__doc__


@pytest.mark.parametrize(
    "name, paper_number",
    [
        ("feature_extraction", "40.3%"),
        ("finetune_crossentropy", "58.5%"),
        ("finetune_haversine", "72.5%"),
    ],
)
def test_paper_experiments_use_the_paper_hyperparameters(name, paper_number):
    config = experiments.get(name)
    module = __import__(f"keras_geo.experiments.{name}", fromlist=["config"])
    assert paper_number in module.__doc__
    assert config.dataset == "geoguessr/top20"
    assert (config.learning_rate, config.weight_decay, config.batch_size) == (
        1e-3,
        1e-4,
        180,
    )
    assert config.epochs_frozen == 10 and config.flip and config.weights == "imagenet"
    assert config.image_size == 224


def test_phases_and_losses_of_the_paper_experiments():
    assert experiments.get("feature_extraction").epochs_finetune == 0
    haversine = experiments.get("finetune_haversine")
    assert (haversine.loss, haversine.alpha, haversine.epochs_finetune) == (
        "haversine",
        2.5,
        40,
    )
    assert experiments.get("finetune_crossentropy").loss == "crossentropy"


def test_demo_is_small_and_needs_no_download():
    config = experiments.get("demo")
    assert config.dataset == "geoguessr/synthetic"
    assert config.weights == "none"
    assert config.image_size <= 64


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(UserError, match="finetune_haversine"):
        experiments.get("finetune_haversin")


@pytest.mark.parametrize(
    "name", ["feature_extraction", "finetune_crossentropy", "finetune_haversine"]
)
def test_paper_experiments_keep_the_paper_recipe_for_every_new_option(name):
    config = experiments.get(name)
    assert (config.backbone, config.finetune_stages, config.finetune_learning_rate) == (
        "resnet50",
        "1",
        None,
    )
    assert (config.lr_schedule, config.warmup_epochs, config.class_weight) == (
        "constant",
        0,
        "none",
    )
    assert config.crop_min_area == 0.08


def test_modern_recipe_claims_no_number():
    import re

    module = __import__("keras_geo.experiments.modern", fromlist=["config"])
    assert not re.search(r"\d\d(\.\d)?% (test|top20|accuracy)", module.__doc__)
    assert "--experiment modern" in module.__doc__ and not experiments.get("modern").flip
