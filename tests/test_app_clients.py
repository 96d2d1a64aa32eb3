"""Clients keras-geo did not write, against a running app: Gradio's client and OpenAPI.

The app runs with uvicorn on 127.0.0.1 (a thread); `gradio_client.Client`
calls its named endpoint `/predict`, which must answer what
`POST /api/predict` answers; FastAPI's schema at `/api/openapi.json` must
describe both JSON routes, and `/api/docs` must render it from local files.
"""

import re

import httpx
import numpy as np
import pytest
from app_helpers import ThreadedServer, save_models, scene_files

from keras_geo import predict
from keras_geo.app import server


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("clients")
    run_dir, _ = save_models(root)
    state = server.make_state(predict.load_predictor(run_dir), model_name="tiny-run", top_k=3)
    running = ThreadedServer(server.build_app(state))
    yield running, scene_files(root, count=4)
    running.stop()
    state.close()


@pytest.fixture(scope="module")
def gradio(app):
    from gradio_client import Client

    return Client(app[0].url + "/", verbose=False, download_files=False)


def post_image(url, path):
    with path.open("rb") as f:
        return httpx.post(url + "/api/predict", files={"image": (path.name, f)}, timeout=60)


def test_gradio_client_finds_the_named_endpoint(gradio):
    api = gradio.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict"]
    (parameter,) = api["named_endpoints"]["/predict"]["parameters"]
    assert parameter["parameter_name"] == "image"


def test_gradio_client_gets_what_the_json_api_answers(app, gradio):
    from gradio_client import handle_file

    running, scenes = app
    for path in scenes:
        theirs = gradio.predict(handle_file(str(path)), api_name="/predict")
        ours = post_image(running.url, path).json()
        assert theirs["file"] == ours["file"] == path.name
        assert theirs["model"] == ours["model"] == "tiny-run"
        assert theirs["countries"] == ours["countries"] and len(ours["countries"]) == 3
        np.testing.assert_allclose(theirs["probabilities"], ours["probabilities"], atol=1e-6)
        assert theirs["coordinates"] == ours["coordinates"]


def test_gradio_client_gets_the_one_line_error(app, gradio, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.txt"
    notes.write_text("hello, not pixels\n")
    with pytest.raises(AppError, match=r"^not an image \(JPEG, PNG, GIF, BMP or WebP expected\)$"):
        gradio.predict(handle_file(str(notes)), api_name="/predict")
    assert post_image(app[0].url, notes).json() == {
        "error": "not an image (JPEG, PNG, GIF, BMP or WebP expected)"
    }


def test_openapi_describes_both_json_routes(app):
    url = app[0].url
    schema = httpx.get(url + server.OPENAPI_URL).json()
    assert schema["info"]["title"] == "keras-geo"
    assert {path: sorted(ops) for path, ops in schema["paths"].items()} == {
        "/api/health": ["get"],
        "/api/predict": ["post"],
    }
    post = schema["paths"]["/api/predict"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["image"] and body["properties"]["image"]["format"] == "binary"
    assert _component(schema, post["responses"]["200"])["required"] == [
        "file", "countries", "probabilities", "coordinates", "model", "model_info",
    ]  # fmt: skip
    for status in ("400", "413", "500"):
        assert _component(schema, post["responses"][status])["required"] == ["error"]
    health = schema["paths"]["/api/health"]["get"]["responses"]["200"]
    health_component = _component(schema, health)
    assert set(health_component["properties"]) == {"status", "model", "model_info", "classes"}
    info = schema["components"]["schemas"]["ModelInfo"]
    assert {"dataset", "synthetic", "test"} <= set(info["required"])


def test_openapi_lives_beside_gradios_own(app):
    url = app[0].url
    gradios = httpx.get(url + "/openapi.json")  # Gradio's own schema (its /login/, /upload...).
    assert gradios.status_code == 200 and "/api/predict" not in gradios.json()["paths"]
    assert httpx.get(url + server.OPENAPI_URL).status_code == 200


def test_docs_page_loads_swagger_ui_from_the_app(app):
    url = app[0].url
    page = httpx.get(url + server.DOCS_URL)
    assert page.status_code == 200 and server.OPENAPI_URL in page.text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    sources += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)
    assert sources and all(source.startswith("/api/") for source in sources), sources
    for source in sources:
        assert httpx.get(url + source).status_code == 200, source


def _component(schema, response):
    reference = response["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
