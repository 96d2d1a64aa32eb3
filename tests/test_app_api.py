"""The app's JSON API (`fastapi.testclient`), its page handler and a concurrent load test.

One tiny model, saved as a run directory and exported as a SavedModel; the app
must answer exactly what `keras_geo.predict` answers for the same file.
"""

import concurrent.futures
import struct
import threading
import zlib

import httpx
import numpy as np
import pytest
from app_helpers import CLASS_NAMES, ThreadedServer, save_models, scene_files
from fastapi.testclient import TestClient

from keras_geo import images, predict
from keras_geo.app import gradcam, server, ui, worldmap


def png_header(width, height):
    """A small PNG that claims `width` x `height` pixels (its pixel data is cut short)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    run_dir, saved_model = save_models(root)
    return run_dir, saved_model, scene_files(root)


@pytest.fixture(scope="module")
def keras_app(models):
    predictor = predict.load_predictor(models[0])
    state = server.make_state(predictor, model_name="tiny-run", top_k=3, max_upload_mb=0.5)
    yield state, server.build_app(state)
    state.close()


@pytest.fixture(scope="module")
def client(keras_app):
    with TestClient(keras_app[1]) as test_client:
        yield test_client


def post_image(client, data, name="shot.png"):
    return client.post("/api/predict", files={"image": (name, data, "application/octet-stream")})


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    health = response.json()
    info = health.pop("model_info")
    assert health == {"status": "ok", "model": "tiny-run", "classes": len(CLASS_NAMES)}
    assert info["name"] == "tiny-run" and info["summary"].startswith("tiny-run: ")


def test_two_image_fields_are_refused_as_such_not_as_a_malformed_body(client, models):
    scene = models[2][0].read_bytes()
    files = [("image", ("a.jpg", scene)), ("image", ("b.jpg", scene))]
    response = client.post("/api/predict", files=files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("one image per request") and "malformed" not in error


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", "/api/predict", "POST"),
        ("PUT", "/api/predict", "POST"),
        ("POST", "/api/health", "GET"),
    ],
)
def test_a_wrong_method_on_the_api_is_405_naming_the_right_one(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"error": f"{method} is not allowed on {path}: use {allowed}"}


def test_predict_is_the_predict_document_plus_the_model(client, keras_app, models):
    predictor = keras_app[0].predictor
    for path in models[2][:2]:
        response = post_image(client, path.read_bytes(), name=path.name)
        assert response.status_code == 200
        expected = predict.predict_file(predictor, path, top_k=3)
        answer = response.json()
        assert answer.pop("model") == "tiny-run"
        assert answer.pop("model_info")["name"] == "tiny-run"
        assert answer["file"] == path.name
        assert answer["countries"] == expected["countries"]
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"], atol=1e-6)
        assert answer["coordinates"] == expected["coordinates"]


@pytest.mark.parametrize(
    "case, status, words",
    [
        ("text", 400, "not an image"),
        ("empty", 400, "empty file"),
        ("truncated", 400, "corrupt or truncated"),
        ("huge_pixels", 400, "above the limit of 50.0 MP"),
        ("too_big_upload", 413, "0.5 MB limit"),
        ("no_field", 400, "multipart field `image`"),
        ("not_multipart", 400, "multipart field `image`"),
    ],
)
def test_bad_uploads_are_one_line_4xx_and_the_server_goes_on(client, models, case, status, words):
    scene = models[2][0].read_bytes()  # A JPEG.
    if case == "no_field":
        response = client.post("/api/predict", files={"file": ("a.jpg", scene)})
    elif case == "not_multipart":
        response = client.post("/api/predict", content=scene)
    else:
        data = {
            "text": b"hello, not pixels\n",
            "empty": b"",
            "truncated": scene[: len(scene) // 3],
            "huge_pixels": png_header(10_000, 6_000),
            "too_big_upload": b"\xff\xd8\xff" + bytes(600 * 1024),
        }[case]
        response = post_image(client, data)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error and "\n" not in error
    assert post_image(client, scene).status_code == 200


def test_huge_images_are_refused_by_predict_too(tmp_path, models, capsys):
    from keras_geo.cli.main import main

    path = tmp_path / "huge.png"
    path.write_bytes(png_header(8_000, 8_000))
    code = main(["predict", "--model", str(models[0]), str(path), str(models[2][0])])
    captured = capsys.readouterr()
    assert code == 1 and models[2][0].name in captured.out
    assert captured.err.strip() == (
        f"keras-geo: error: {path}: too large: 8000x8000 pixels (64.0 MP) is above the "
        "limit of 50.0 MP (KERAS_GEO_MAX_PIXELS)"
    )
    predict.check_image_bytes(png_header(10_000, 5_000))  # Exactly 50 MP is allowed.


def test_page_handler_shows_label_map_distances_and_heatmap(keras_app, models):
    state = keras_app[0]
    path = models[2][1]
    label, world, distances, heatmap, note = ui.analyse(state, str(path))
    expected = predict.predict_file(state.predictor, path, top_k=3)
    assert list(label) == expected["countries"]
    assert world.ndim == 3 and world.shape[1] == 960 and world.dtype == np.uint8
    assert distances.startswith(f"Top guess: {expected['countries'][0]} (")
    assert "distance from the top guess" in distances and distances.count(" km") == 2
    assert heatmap.shape[2] == 3 and max(heatmap.shape[:2]) == ui.HEATMAP_WIDTH
    assert "Grad-CAM" in note


def test_the_page_decodes_an_upload_once_and_calls_the_model_from_the_batcher(
    keras_app, models, monkeypatch
):
    state = keras_app[0]
    path = models[2][3]
    expected = state.predictor.probabilities(path.read_bytes())
    decodes, callers = [], []
    decode, classify, cam = images.decode, state.predictor.classify, gradcam.gradcam

    def counted(fn, calls, what):
        return lambda *args: calls.append(what(*args)) or fn(*args)

    monkeypatch.setattr(images, "decode", counted(decode, decodes, len))
    monkeypatch.setattr(state.predictor, "pixels", lambda data: pytest.fail("decoded twice"))
    thread = lambda *args: threading.current_thread().name  # noqa: E731
    monkeypatch.setattr(state.predictor, "classify", counted(classify, callers, thread))
    monkeypatch.setattr(gradcam, "gradcam", counted(cam, callers, thread))
    label, _, _, heatmap, note = ui.analyse(state, str(path))
    assert decodes == [path.stat().st_size]
    assert callers == ["keras-geo-batcher"] * 2  # The class scores, then Grad-CAM.
    top = worldmap.top_classes(expected, state.top_k)
    np.testing.assert_allclose(list(label.values()), expected[top], rtol=0, atol=1e-6)
    assert heatmap is not None and "Grad-CAM" in note


def test_saved_model_answers_the_same_and_says_gradcam_needs_keras(models, client):
    predictor = predict.load_predictor(models[1])
    state = server.make_state(predictor, model_name="tiny-saved", top_k=3)
    try:
        with TestClient(server.build_app(state)) as saved_client:
            for path in models[2][:2]:
                from_saved = post_image(saved_client, path.read_bytes()).json()
                from_keras = post_image(client, path.read_bytes()).json()
                assert from_saved["model"] == "tiny-saved"
                assert from_saved["countries"] == from_keras["countries"]
                np.testing.assert_allclose(
                    from_saved["probabilities"], from_keras["probabilities"], atol=1e-5
                )
        _, _, _, heatmap, note = ui.analyse(state, str(models[2][0]))
        assert heatmap is None and note == ui.NEEDS_KERAS
    finally:
        state.close()


def test_64_requests_from_8_threads_each_get_their_own_answer(keras_app, models):
    state, app = keras_app
    paths = models[2]
    expected = {p.name: predict.predict_file(state.predictor, p, top_k=3) for p in paths}
    calls_before = len(state.batcher.batch_sizes)
    app_server = ThreadedServer(app)
    try:

        def ask(i):
            path = paths[i % len(paths)]
            with httpx.Client(base_url=app_server.url, trust_env=False, timeout=120) as http:
                response = http.post(
                    "/api/predict", files={"image": (path.name, path.read_bytes())}
                )
            return path.name, response

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(64)))
    finally:
        app_server.stop()
    assert len(answers) == 64
    for name, response in answers:
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["file"] == name
        assert answer["countries"] == expected[name]["countries"]
        np.testing.assert_allclose(
            answer["probabilities"], expected[name]["probabilities"], atol=1e-5
        )
    assert sum(state.batcher.batch_sizes[calls_before:]) == 64


@pytest.mark.parametrize(
    "data, words",
    [(b"plain text\n", "not an image"), (png_header(9_000, 9_000), "above the limit of 50.0 MP")],
)
def test_page_handler_turns_a_bad_file_into_one_gradio_error(keras_app, tmp_path, data, words):
    import gradio as gr

    path = tmp_path / "upload.png"
    path.write_bytes(data)
    with pytest.raises(gr.Error) as raised:
        ui.analyse(keras_app[0], str(path))
    assert words in raised.value.message and "\n" not in raised.value.message
    assert ui.analyse(keras_app[0], None) == (None, None, "", None, "")  # A cleared image.


def test_the_page_upload_has_the_same_size_limit(client):
    big = client.post("/gradio_api/upload", files={"files": ("a.jpg", bytes(700 * 1024))})
    small = client.post("/gradio_api/upload", files={"files": ("a.jpg", bytes(100 * 1024))})
    assert big.status_code == 413 and small.status_code == 200
