"""The `geoguessr` TFDS dataset (see README.md in this folder)."""
