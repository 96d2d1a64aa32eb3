"""TFDS datasets of keras-geo. Importing this package registers `geoguessr`."""

from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import Builder  # noqa: F401
