"""One memory budget per input, on every path: every case of the memory probe, scaled down.

The bombs are made here (`benchmarks/bombs.py`, in a blink), the commands run
as their own processes with their data segment capped (RLIMIT_DATA), so an
assertion about memory is one about the process that did the work, and a
regression fails a test instead of taking the machine. Budget in these
tests: `KERAS_GEO_MAX_PIXELS=4000000` (file budget 17 MB) unless said.
"""

import io
import json
import os
import pathlib
import signal
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from app_helpers import save_models, scene_files
from PIL import Image

from keras_geo import animation, export, predict
from tfds_geoguessr.geoguessr import geoguessr_dataset_builder, limits, parallel

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bombs  # noqa: E402

BUDGET = "4000000"
CAP = 1536 * 2**20  # A predict process of the tiny model holds about 0.8 GB.


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_GEO_MAX_PIXELS": BUDGET, **extra}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`(run_dir, saved_model, folder)` of the tiny app model, and the inputs in `folder`."""
    root = tmp_path_factory.mktemp("memory")
    run_dir, saved_model = save_models(root)
    (root / "one_frame.gif").write_bytes(bombs.gif(2000, 2000, 1))
    (root / "frames.gif").write_bytes(bombs.gif(2000, 2000, 800))  # 3.2 GB if all decoded.
    return run_dir, saved_model, root


@pytest.mark.parametrize("kind", ["run_dir", "saved_model"])
def test_a_gif_of_800_frames_costs_one_frame_in_predict(models, kind):
    model = models[0] if kind == "run_dir" else models[1]
    folder = models[2]
    argv = ["predict", "--json", "--model", str(model)]
    code, good_mb, good_out, _ = bombs.run_measured(
        [*argv, str(folder / "one_frame.gif")], env=_env(), cap_bytes=CAP
    )
    assert code == 0
    code, bomb_mb, out, err = bombs.run_measured(
        [*argv, str(folder / "frames.gif")], env=_env(), cap_bytes=CAP
    )
    assert code == 0, err[-500:]  # Decoding every frame fails under the cap.
    first_frame = json.loads(good_out)["predictions"][0]
    answer = json.loads(out)["predictions"][0]
    assert answer["countries"] == first_frame["countries"]
    np.testing.assert_allclose(answer["probabilities"], first_frame["probabilities"], atol=1e-6)
    assert bomb_mb < good_mb + 100, (bomb_mb, good_mb)


def test_first_gif_frame_decodes_as_the_whole_gif_does():
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), np.uint8)) for _ in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    data = tf.constant(buffer.getvalue())
    cut, pixels = animation.first_gif_frame(data)
    assert len(cut.numpy()) < len(buffer.getvalue()) and int(pixels) == 1200
    whole = tf.io.decode_image(data, channels=3, expand_animations=False)
    np.testing.assert_array_equal(tf.io.decode_image(cut, channels=3)[0], whole)
    png = io.BytesIO()
    frames[0].save(png, format="PNG")
    assert animation.first_gif_frame(tf.constant(png.getvalue()))[0].numpy() == png.getvalue()


def test_a_first_frame_larger_than_the_screen_counts():
    """A 100x100 GIF whose first frame declares 3000x3000 (9 MP) is above a 4 MP budget."""
    data = bombs.gif(100, 100, 2, first_frame=(3000, 3000))
    with pytest.raises(ValueError, match=r"too large: 3000x3000 pixels"):
        os.environ[limits.MAX_PIXELS_ENV] = BUDGET
        try:
            predict.check_image_bytes(data)  # PIL's size grows to the frame.
        finally:
            del os.environ[limits.MAX_PIXELS_ENV]
    with pytest.raises(tf.errors.InvalidArgumentError, match="image too large"):
        export.decode_image(tf.constant(data), image_size=32, max_pixels=4_000_000)


def _predict_one_by_one(model, paths, **kwargs):
    return bombs.run_measured(
        ["predict", "--model", str(model), *map(str, paths)], env=_env(), cap_bytes=CAP, **kwargs
    )


def test_devices_fifos_and_oversized_files_are_one_line_each(models, tmp_path):
    good = scene_files(tmp_path, count=1)[0]
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # Nobody writes to it: reading it would wait for ever.
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:  # A JPEG marker, then 18 MB: over the 17 MB file budget.
        f.write(b"\xff\xd8\xff" + bytes(18 * 10**6))
    code, _, out, err = _predict_one_by_one(models[0], ["/dev/zero", fifo, big, good], timeout=300)
    assert code == 1
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("keras-geo")] == [
        "keras-geo: error: /dev/zero: not a regular file (a character device): pass an image file",
        f"keras-geo: error: {fifo}: a FIFO (named pipe) with no writer: nothing to read",
        f"keras-geo: error: {big}: too large: the file holds 18.0 MB, above the limit of "
        "17.0 MB (4 bytes per pixel of KERAS_GEO_MAX_PIXELS)",
    ]
    assert good.name in out  # The good file after them is still predicted.


def test_a_pipe_with_a_writer_is_read(models, tmp_path):
    good = scene_files(tmp_path, count=1)[0]
    with open(good, "rb") as image:
        code, _, out, err = _predict_one_by_one(models[0], ["/dev/stdin"], stdin=image)
    assert code == 0 and "/dev/stdin" in out, err


def test_reads_stop_at_the_budget():
    class Endless(io.RawIOBase):
        def __init__(self):
            self.served = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = bytes(len(buffer))
            self.served += len(buffer)
            return len(buffer)

    stream = Endless()
    with pytest.raises(limits.TooLarge, match="holds more than 0.0 MB"):
        limits.read_stream(io.BufferedReader(stream), 1000)
    assert stream.served <= 1001 + io.DEFAULT_BUFFER_SIZE
    with pytest.raises(limits.TooLarge, match="holds 2000.0 MB"):
        limits.read_stream(io.BytesIO(b""), 1000, declared=2 * 10**9)  # Unread.


def test_a_sparse_10_gb_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.truncate(10 * 10**9)  # No disk used, nothing to read in time if it were read.
    with pytest.raises(limits.TooLarge, match=r"holds 10000.0 MB, above the limit of 201.0 MB"):
        limits.read_file(path, limits.max_file_bytes(limits.MAX_PIXELS))


def _zip_with_bombs(tmp_path, member_mb):
    """A top20 zip (3 tiny JPEGs a country) plus 3 zero-filled members and a fake JPEG."""
    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels
    from tfds_geoguessr.geoguessr.make_dummy_data import write_kaggle_folder

    folder = write_kaggle_folder(
        tmp_path / "kaggle", {c: 3 for c in read_labels("labels_top20.txt")}, size=8
    )
    path = tmp_path / "kaggle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*.jpg")):
            archive.write(file, f"compressed_dataset/{file.relative_to(folder)}")
    members = {f"compressed_dataset/France/zeros{i}.jpg": member_mb * 2**20 for i in range(3)}
    bombs.add_zero_members(path, members)
    bombs.add_zero_members(
        path, {"compressed_dataset/Japan/marker.jpg": member_mb * 2**20}, b"\xff\xd8\xff"
    )
    return path


def test_a_zip_of_zero_filled_members_is_skipped_unread(tmp_path):
    """Three 300 MB members and one JPEG-marked one: skipped from their declared size."""
    manual = _zip_with_bombs(tmp_path, 300)
    data_dir = tmp_path / "tfds"
    argv = ["data", "build", "--manual-dir", str(manual), "--data-dir", str(data_dir)]
    env = _env(KERAS_GEO_MAX_PIXELS="1000000")  # File budget 5.2 MB.
    code, peak_mb, out, err = bombs.run_measured(
        [*argv, "--num-workers", "2"], env=env, cap_bytes=2 * 2**30
    )
    assert code == 0, err[-800:]
    assert "skipped files: 4 (too large: 4)" in out
    version = geoguessr_dataset_builder.Builder.VERSION
    report = json.loads((data_dir / f"geoguessr/top20/{version}/build_report.json").read_text())
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    assert reasons["France/zeros0.jpg"].startswith("too large: the file holds 314.6 MB")
    clean = tmp_path / "clean"
    code, clean_mb, _, _ = bombs.run_measured(
        ["data", "build", "--manual-dir", str(tmp_path / "kaggle"), "--data-dir", str(clean)],
        env=env,
        cap_bytes=2 * 2**30,
    )
    assert code == 0 and peak_mb < clean_mb + 100, (peak_mb, clean_mb)


def test_the_builds_window_holds_one_files_budget_of_bytes():
    read = []

    def items():
        for i in range(40):
            read.append(i)
            yield b"x" * 60

    results = parallel.ordered_map(len, items(), 2, chunksize=4, weight=len, max_weight=100)
    assert next(results) == 60
    assert len(read) <= 3  # Not the 32-item window: 60-byte items, 100 bytes in flight.
    assert list(results) == [60] * 39


def _app_env(tmp):
    """The environment of an app whose temporary files all go to `tmp`.

    Without `GRADIO_TEMP_DIR`: an app test earlier in this process pointed it
    at this process's own private folder, where the child's would then go.
    """
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp)}


@pytest.fixture(scope="module")
def app(models, tmp_path_factory):
    """`keras-geo app` on the run directory, capped at 1 GB above what it holds once started."""
    tmp = tmp_path_factory.mktemp("app-tmp")
    served = bombs.ServedApp(
        models[0],
        env=_app_env(tmp),
        cap_above_mb=1024,
        extra=["--max-upload-mb", "8"],
    )
    yield served
    served.stop()


def _peak_growth(app, ask):
    app.reset_peak()
    before = app.rss_mb()
    answer = ask()
    return answer, app.peak_mb() - before


def _post(app, path):
    import httpx

    with httpx.Client(base_url=app.url, trust_env=False, timeout=300) as http:
        return http.post("/api/predict", files={"image": (path.name, path.read_bytes())})


def test_the_api_decodes_one_frame_of_a_500_frame_gif(app, models, tmp_path):
    path = tmp_path / "frames.gif"
    path.write_bytes(bombs.gif(2000, 2000, 500))  # 2 MB; 2 GB if every frame were decoded.
    one = _post(app, models[2] / "one_frame.gif").json()
    response, growth = _peak_growth(app, lambda: _post(app, path))
    assert response.status_code == 200, response.text
    assert response.json()["countries"] == one["countries"]
    assert growth < 200, growth


@pytest.mark.parametrize("via", ["api", "page"])
def test_a_13000_px_png_is_refused_from_its_header(app, tmp_path, via):
    path = tmp_path / "huge.png"
    path.write_bytes(bombs.png(13000, 13000))  # 164 KB; 507 MB as RGB.
    if via == "api":
        (response, growth) = _peak_growth(app, lambda: _post(app, path))
        assert response.status_code == 400
        error = response.json()["error"]
    else:
        (ok, error), growth = _peak_growth(app, lambda: bombs.ask_page(app.url, path))
        assert not ok
    assert error.startswith("too large: 13000x13000 pixels (169.0 MP) is above the limit")
    assert growth < 50, growth


def test_the_page_decodes_one_frame_and_shows_one_line_errors(app, tmp_path):
    frames = tmp_path / "frames.gif"
    frames.write_bytes(bombs.gif(2000, 2000, 500))
    (ok, output), growth = _peak_growth(app, lambda: bombs.ask_page(app.url, frames))
    assert ok and growth < 300, (output, growth)
    for name, data, words in [
        ("notes.png", b"hello, not pixels\n", "not an image (JPEG, PNG, GIF, BMP or WebP"),
        ("empty.png", b"", "empty file, not an image"),
    ]:
        (tmp_path / name).write_bytes(data)
        ok, error = bombs.ask_page(app.url, tmp_path / name)
        assert not ok and error.startswith(words) and "\n" not in error, error
        assert "/" not in error  # No server path.


@pytest.mark.parametrize("route", ["/api/predict", "/gradio_api/upload"])
def test_a_body_without_length_is_cut_off_while_streaming(app, route):
    """An 8 MB limit; a 400 MB chunked body gets its 413 long before its end."""
    status, sent_mb = bombs.chunked_upload(app.url, route, total_mb=400)
    assert status.startswith("HTTP/1.1 413"), status
    assert sent_mb < 100, sent_mb


def test_sigterm_stops_the_app_like_ctrl_c_and_removes_every_upload(models, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    served = bombs.ServedApp(models[0], env=_app_env(tmp))
    try:
        scene = scene_files(tmp_path, count=1)[0]
        ok, _ = bombs.ask_page(served.url, scene)
        assert ok
        folders = sorted(p.name for p in tmp.iterdir())
        uploads = [name for name in folders if name.startswith("keras-geo-uploads-")]
        assert len(uploads) == 1 and (tmp / uploads[0]).stat().st_mode & 0o077 == 0  # Private.
        assert any(p.name == scene.name for p in (tmp / uploads[0]).rglob("*"))  # Held there.
        assert not (tmp / "gradio").exists()  # Nothing in the shared Gradio folder.
        import re

        import httpx

        config = httpx.get(served.url + "/config", trust_env=False).text
        server_paths = set(re.findall(r'"(/[^"]+)"', config)) - {"/gradio_api"}
        assert server_paths and all(p.startswith(str(tmp / uploads[0])) for p in server_paths)
    finally:
        code, out, err = served.stop(signal.SIGTERM)
    assert code == 0, err[-1000:]
    assert out.strip().endswith("keras-geo app: stopped.") and "Traceback" not in err
    assert list(tmp.iterdir()) == []  # Uploads and examples gone.
