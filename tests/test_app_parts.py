"""The app's parts on their own: the world map, Grad-CAM, the request batcher, examples."""

import concurrent.futures
import threading
import time

import keras
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from keras_geo import countries
from keras_geo.app import batching, examples, gradcam, worldmap

# --- world map ---------------------------------------------------------------

MAP_CLASSES = ["Brazil", "France", "Russia", "Singapore"]


def pixel_colour(figure, ax, image, latitude, longitude):
    x, y = ax.transData.transform((longitude, latitude))
    row, col = int(round(figure.bbox.height - y)), int(round(x))
    return image[row, col, :3].astype(float) / 255


def test_map_shades_by_probability_and_stars_the_top_guess():
    probabilities = np.array([0.3, 0.6, 0.05, 0.05])
    figure = Figure(figsize=(9.6, 4.8), dpi=100)
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    norm = worldmap.draw_map(ax, MAP_CLASSES, probabilities)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())
    cmap = colormaps[worldmap.CMAP]

    def expected(p):
        return np.array(cmap(norm(p))[:3])

    # Inside Brazil and Russia, away from borders and markers: their shade.
    np.testing.assert_allclose(pixel_colour(figure, ax, image, -8, -52), expected(0.3), atol=0.02)
    np.testing.assert_allclose(pixel_colour(figure, ax, image, 62, 95), expected(0.05), atol=0.02)
    # China is no class: plain land. The top guess (France) carries the star.
    land = np.array([0xE9, 0xE9, 0xE6]) / 255
    np.testing.assert_allclose(pixel_colour(figure, ax, image, 35, 105), land, atol=0.02)
    france = countries.get_country("France")
    star = np.array(to_rgb(worldmap.STAR))
    np.testing.assert_allclose(
        pixel_colour(figure, ax, image, france.latitude, france.longitude), star, atol=0.05
    )
    assert norm.vmax == pytest.approx(0.6)
    # Singapore has no border in countryinfo: it is a dot in its shade.
    assert "SG" not in worldmap.borders()
    singapore = countries.get_country("Singapore")
    np.testing.assert_allclose(
        pixel_colour(figure, ax, image, singapore.latitude, singapore.longitude),
        expected(0.05),
        atol=0.03,
    )


def test_the_map_holds_all_of_greenland_and_the_star_stands_out_on_every_shade():
    north = max(ring[:, 1].max() for ring in worldmap.borders()["GL"])
    assert 83 < north < worldmap.LAT_RANGE[1] - 3
    star = np.array(to_rgb(worldmap.STAR))
    for p in (0.0, 0.5, 1.0):  # The palest and the darkest shades, and one between.
        assert np.linalg.norm(star - np.array(colormaps[worldmap.CMAP](p)[:3])) > 0.6


def test_render_map_is_an_rgb_image_of_the_requested_width():
    image = worldmap.render_map(MAP_CLASSES, np.array([0.1, 0.2, 0.3, 0.4]), width_px=640)
    assert image.dtype == np.uint8 and image.shape[1] == 640 and image.shape[2] == 3
    assert 200 < image.shape[0] < 320  # Equirectangular: about 142 of 360 degrees tall.


def test_runner_up_line_gives_great_circle_km_from_the_top_guess():
    names = ["France", "Germany", "Japan"]
    line = worldmap.runner_up_line(names, np.array([0.6, 0.3, 0.1]), top_k=3)
    france, germany, japan = (countries.get_country(n) for n in names)
    km_germany = countries.haversine_km(
        france.latitude, france.longitude, germany.latitude, germany.longitude
    )
    km_japan = countries.haversine_km(
        france.latitude, france.longitude, japan.latitude, japan.longitude
    )
    assert line == (
        "Top guess: France (60%). Runner-up guesses and their distance from the top guess: "
        f"Germany (30%) {km_germany:,.0f} km, Japan (10%) {km_japan:,.0f} km."
    )
    assert worldmap.runner_up_line(names, np.array([0.6, 0.3, 0.1]), top_k=1) == (
        "Top guess: France (60%)."
    )


# --- Grad-CAM ----------------------------------------------------------------

SIZE = 32


def square_scenes(n, rng, corner=None):
    """Grey noise with one 8x8 square: red for class 1, blue for class 0 (the only cue)."""
    x = rng.uniform(90, 160, (n, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 2, n)
    for i in range(n):
        row, col = rng.integers(0, SIZE - 8, 2) if corner is None else corner
        x[i, row : row + 8, col : col + 8] = (220, 30, 30) if y[i] else (30, 30, 220)
    return x, y


@pytest.fixture(scope="module")
def square_model():
    """A small CNN trained to tell a red square from a blue one, anywhere in the image."""
    keras.utils.set_random_seed(0)
    x, y = square_scenes(512, np.random.default_rng(0))
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    x_test, y_test = square_scenes(200, np.random.default_rng(1))
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.95  # It learned the cue.
    return model


@pytest.mark.parametrize("corner", [(0, 0), (24, 24), (0, 24)])
def test_gradcam_peaks_where_the_only_class_evidence_is(square_model, corner):
    image = np.random.default_rng(2).uniform(90, 160, (SIZE, SIZE, 3)).astype("float32")
    row, col = corner
    image[row : row + 8, col : col + 8] = (220, 30, 30)
    heat = gradcam.gradcam(gradcam.feature_map_model(square_model), image, class_index=1)
    assert heat.shape == (SIZE, SIZE) and heat.max() == pytest.approx(1.0)
    peak = np.unravel_index(heat.argmax(), heat.shape)
    assert row - 2 <= peak[0] < row + 10 and col - 2 <= peak[1] < col + 10
    inside = heat[row : row + 8, col : col + 8].mean()
    assert (
        inside
        > 2
        * np.delete(
            heat.ravel(),
            np.ravel_multi_index(np.mgrid[row : row + 8, col : col + 8].reshape(2, -1), heat.shape),
        ).mean()
    )


def test_gradcam_taps_inside_the_nested_resnet50_backbone():
    from keras_geo.model import build_model

    model = build_model(3, image_size=32, weights=None)
    cam_model = gradcam.feature_map_model(model)
    feature_map, probabilities = cam_model.outputs
    assert tuple(feature_map.shape[1:3]) == (8, 8)  # conv5 is 1x1 at 32 px: conv2 instead.
    pixels = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        cam_model(pixels[None])[1], model(pixels[None]), rtol=1e-5, atol=1e-6
    )
    heat = gradcam.gradcam(cam_model, pixels, class_index=2)
    assert heat.shape == (8, 8) and 0 <= heat.min() and heat.max() <= 1


def test_overlay_keeps_the_image_size():
    image = np.zeros((50, 80, 3), np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1
    blended = gradcam.overlay(image, heat)
    assert blended.shape == (50, 80, 3) and blended.dtype == np.uint8
    hot, cold = blended[0, 0].astype(int), blended[-1, -1].astype(int)
    assert hot[0] > cold[0] and hot[2] < cold[2]  # jet: red where hot, blue where cold.


# --- batcher -----------------------------------------------------------------


class GatedPredictor:
    """Returns `[first byte, batch size]` per image; its first call waits for `gate`."""

    class_names = ["a", "b"]
    coordinates = None

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls = []

    def probabilities_batch(self, images):
        self.entered.set()
        self.gate.wait(timeout=30)
        if any(image == b"bad" for image in images):
            raise ValueError("decoder failed")
        self.calls.append(len(images))
        return np.array([[image[0], len(images)] for image in images], np.float32)


def test_waiting_requests_are_answered_by_one_model_call():
    predictor = GatedPredictor()
    batcher = batching.Batcher(predictor, max_batch=4)
    try:
        first = batcher.submit(bytes([1]))
        assert predictor.entered.wait(timeout=30)  # The worker is busy with `first`.
        rest = [batcher.submit(bytes([i])) for i in range(2, 8)]
        predictor.gate.set()
        assert first.result(timeout=30).tolist() == [1, 1]
        answers = [future.result(timeout=30) for future in rest]
    finally:
        batcher.close()
    assert [int(a[0]) for a in answers] == list(range(2, 8))  # Each its own row.
    assert predictor.calls == [1, 4, 2]  # The 6 waiting ones: max_batch 4, then 2.


def test_a_bad_image_in_a_batch_fails_alone():
    predictor = GatedPredictor()
    batcher = batching.Batcher(predictor, max_batch=8)
    try:
        first = batcher.submit(bytes([1]))
        assert predictor.entered.wait(timeout=30)
        good, bad, other = (batcher.submit(b) for b in (bytes([2]), b"bad", bytes([3])))
        predictor.gate.set()
        first.result(timeout=30)
        assert good.result(timeout=30)[0] == 2 and other.result(timeout=30)[0] == 3
        with pytest.raises(ValueError, match="decoder failed"):
            bad.result(timeout=30)
    finally:
        batcher.close()


def test_a_run_call_waits_its_turn_on_the_worker_thread_and_its_error_reaches_the_caller():
    predictor = GatedPredictor()
    batcher = batching.Batcher(predictor, max_batch=8)
    order = []
    try:
        first = batcher.submit(bytes([1]))
        assert predictor.entered.wait(timeout=30)
        queued = [batcher.submit(bytes([i])) for i in (2, 3)]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = pool.submit(batcher.run, lambda: order.append(threading.current_thread().name))
            while batcher._queue.qsize() < 3:  # Both images and the job are waiting.
                time.sleep(0.01)
            later = batcher.submit(bytes([4]))
            predictor.gate.set()
            job.result(timeout=30)
        for future in [first, *queued, later]:
            future.result(timeout=30)
        with pytest.raises(ZeroDivisionError):
            batcher.run(lambda: 1 / 0)
    finally:
        batcher.close()
    assert order == ["keras-geo-batcher"]
    assert predictor.calls == [1, 2, 1]  # The job ran between the batch before it and after.


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        batching.Batcher(GatedPredictor(), max_batch=0)


# --- examples ----------------------------------------------------------------


def test_examples_are_synthetic_scenes_of_the_models_countries(tmp_path):
    from PIL import Image

    paths = examples.draw_examples(["France", "Japan", "Narnia"], tmp_path, count=4, size=64)
    assert [p.split("_", 1)[1] for p in map(lambda p: p.rsplit("/", 1)[1], paths)] == [
        "France.png",
        "Japan.png",
    ]
    assert Image.open(paths[0]).size == (64, 64)
    assert examples.draw_examples(["Narnia"], tmp_path) == []


def test_a_wrong_number_of_answers_fails_the_batch_not_the_worker():
    class Short(GatedPredictor):
        def probabilities_batch(self, images):
            if images[0] == b"short":
                return np.zeros((0, 2), np.float32)
            return super().probabilities_batch(images)

    predictor = Short()
    predictor.gate.set()
    batcher = batching.Batcher(predictor, max_batch=8)
    try:
        with pytest.raises(RuntimeError, match="0 answers for 1 images"):
            batcher.probabilities(b"short")
        assert batcher.probabilities(bytes([5]))[0] == 5  # The worker lives on.
    finally:
        batcher.close()
