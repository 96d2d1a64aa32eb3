"""The build's per-frame work (`frames`): the paper's squash, in any process."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from tfds_geoguessr.geoguessr import frames


def _jpeg(width, height, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_an_rgb_frame_is_squashed_as_pil_converts_and_resizes_it():
    """Skipping the RGB copy changes no stored byte."""
    data = _jpeg(154, 66)
    with Image.open(io.BytesIO(data)) as image:
        expected = frames.encode_jpeg(image.convert("RGB").resize((32, 32), Image.BILINEAR))

    assert frames.encode_example(data, 32, max_pixels=10**6) == (expected, None)


def test_a_frame_is_stored_at_the_config_size_or_its_own_shorter_side():
    """A Kaggle-sized frame shrinks to the size; a smaller copy is never upscaled."""
    for (width, height), side in (((300, 240), 224), ((128, 128), 128), ((300, 100), 100)):
        stored, reason = frames.encode_example(_jpeg(width, height), 224, max_pixels=10**6)
        assert reason is None
        with Image.open(io.BytesIO(stored)) as image:
            assert image.size == (side, side)


def test_bad_frames_give_the_reports_reason():
    assert frames.convert_frame((None, "undecodable: gone"), 32, 10**6) == (
        None,
        "undecodable: gone",
    )
    assert frames.encode_example(b"not an image", 32, 10**6) == (
        None,
        "undecodable: not an image format PIL reads",
    )
    image, reason = frames.encode_example(_jpeg(154, 66), 32, max_pixels=100)
    assert image is None and reason.startswith("too large: 154x66 pixels")


def test_frames_imports_no_tensorflow():
    """Worker processes run `frames` without loading TensorFlow."""
    code = "import sys; import tfds_geoguessr.geoguessr.frames; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
