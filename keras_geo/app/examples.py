"""Example inputs for the app: synthetic scenes drawn at start-up, never real screenshots."""

import pathlib

import numpy as np


def draw_examples(class_names, folder, *, count=4, size=256, seed=0):
    """Draws `count` synthetic scenes of the model's countries as PNG files.

    Countries are spread evenly over the classes that `geoguessr/synthetic`
    can draw (its top20 set); a model with none of them gets no examples.

    Args:
        class_names: the model's countries.
        folder: existing directory to write `<i>_<Country>.png` into.
        count: number of images.
        size: side in pixels (the scenes are drawn at this size, not upscaled).
        seed: the scenes depend only on it.

    Returns:
        The written paths, as strings.
    """
    from PIL import Image

    from tfds_geoguessr.geoguessr import synthetic

    drawable = [name for name in class_names if name in synthetic.CUES]
    if not drawable:
        return []
    picks = [drawable[i] for i in np.linspace(0, len(drawable) - 1, count).round().astype(int)]
    rng = np.random.default_rng(seed)
    paths = []
    for i, country in enumerate(dict.fromkeys(picks)):
        path = pathlib.Path(folder) / f"{i}_{country.replace(' ', '_')}.png"
        Image.fromarray(synthetic.draw_scene(country, rng, size)).save(path)
        paths.append(str(path))
    return paths
