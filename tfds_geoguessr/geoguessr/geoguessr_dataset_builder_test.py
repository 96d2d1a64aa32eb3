"""TFDS harness test of the `geoguessr` builder over `dummy_data/`.

`dummy_data/` (made by `make_dummy_data.py`) holds 4 tiny JPEGs for each
top-20 country, so each splits 2 / 1 / 1, and one Netherlands image, which
top20 excludes.
"""

import pytest
import tensorflow_datasets as tfds

from tfds_geoguessr.geoguessr import geoguessr_dataset_builder


class GeoguessrTop20Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = geoguessr_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["top20"]
    SPLITS = {"train": 40, "validation": 20, "test": 20}


@pytest.mark.slow
class GeoguessrSyntheticTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = geoguessr_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["synthetic"]
    SPLITS = {"train": 880, "validation": 200, "test": 1000}


if __name__ == "__main__":
    tfds.testing.test_main()
