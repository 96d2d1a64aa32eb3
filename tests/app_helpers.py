"""Shared by the app tests: a tiny model saved as a run directory and a SavedModel,
synthetic scene files, and a uvicorn server running the app in a thread."""

import threading
import time

import keras
import numpy as np
from train_helpers import write_run

from keras_geo import export
from keras_geo.model import CaffePreprocessing
from tfds_geoguessr.geoguessr import synthetic

CLASS_NAMES = ["Brazil", "France", "Japan", "Norway", "United States"]
IMAGE_SIZE = 32


def tiny_model():
    """The model contract (pixels 0-255 in, softmax out) with a 16x16 feature map."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = CaffePreprocessing()(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def save_models(root):
    """Writes `root/run` (run directory) and `root/models/geo/1` (SavedModel); same weights."""
    keras.utils.set_random_seed(3)
    model = tiny_model()
    run_dir = write_run(root / "run", model, CLASS_NAMES, IMAGE_SIZE)
    export.export_saved_model(
        model, CLASS_NAMES, root / "models" / "geo" / "1", image_size=IMAGE_SIZE
    )
    return run_dir, root / "models" / "geo" / "1"


def scene_files(folder, count=8, size=96):
    """Writes `count` synthetic scenes (PNG and JPEG alternately); returns their paths."""
    from PIL import Image

    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        country = CLASS_NAMES[i % len(CLASS_NAMES)]
        path = folder / f"scene{i}_{country.replace(' ', '_')}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(synthetic.draw_scene(country, rng, size)).save(path)
        paths.append(path)
    return paths


class ThreadedServer:
    """Runs a FastAPI app with uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app):
        import socket

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)
