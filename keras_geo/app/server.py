"""The FastAPI application: the JSON API next to the mounted Gradio UI.

    GET  /api/health        -> {"status": "ok", "model": NAME, "model_info": {...}, "classes": C}
    POST /api/predict       multipart field `image` -> one `keras-geo predict --json`
                            entry (`file`, `countries`, `probabilities`, `coordinates`)
                            plus `model` and `model_info` (`keras_geo.model_info`: its
                            data, synthetic or not, test accuracy); a bad upload ->
                            4xx {"error": "<one line>"}
    GET  /api/openapi.json  FastAPI's OpenAPI schema of the two (`keras_geo.app.schema`)
    GET  /api/docs          that schema rendered (Swagger UI, served locally: no CDN)
    other methods on /api/* -> 405 {"error": ...} with an `Allow` header
    /                       the Gradio UI (`keras_geo.app.ui`), whose named endpoint
                            `/predict` answers Gradio clients with the same document

Every model call goes through one `Batcher` (see `keras_geo.app.batching`).
"""

import dataclasses
import pathlib
import shutil
import tempfile

from keras_geo import __version__, predict
from keras_geo.app.batching import Batcher
from keras_geo.app.schema import UPLOAD_FIELD
from keras_geo.errors import one_line

OPENAPI_URL = "/api/openapi.json"  # Not /openapi.json: Gradio serves its own there.
DOCS_URL = "/api/docs"
# Each API route and its one method: any other method gets 405, not the UI's 404.
API_METHODS = {"/api/health": "GET", "/api/predict": "POST"}
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_MULTIPART_SLACK = 64 * 1024  # Boundaries and headers around the file in a request body.
_MAX_PARTS = 8  # Files (and fields) Starlette parses from one request body.


@dataclasses.dataclass
class AppState:
    """What the routes and the UI share.

    Attributes:
        predictor: a `keras_geo.predict` predictor.
        batcher: the `Batcher` every model call goes through.
        model_name: shown in answers and on the page (the `--model` path).
        top_k: countries per answer.
        max_upload_bytes: larger uploads are refused.
        cam_model: Grad-CAM model (`gradcam.feature_map_model`), None for a SavedModel.
        examples: paths of the example images.
        work_dir: temporary directory of the examples, removed by `close`.
    """

    predictor: predict.Predictor
    batcher: Batcher
    model_name: str
    top_k: int
    max_upload_bytes: int
    cam_model: object = None
    examples: list = dataclasses.field(default_factory=list)
    work_dir: pathlib.Path = None

    @property
    def model_info(self):
        """The predictor's `keras_geo.model_info.ModelInfo`, named `model_name`."""
        return dataclasses.replace(self.predictor.info, name=self.model_name)

    def answer(self, image_bytes, *, file):
        """The JSON document of one image for both APIs: `predict_bytes`'s, plus `model`.

        Raises:
            ValueError: the bytes are not an image, a corrupt one or too large (one line).
        """
        document = predict.predict_bytes(self.batcher, image_bytes, file=file, top_k=self.top_k)
        return {**document, "model": self.model_name, "model_info": self.model_info.to_json()}

    def close(self):
        self.batcher.close()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def make_state(predictor, *, model_name, top_k=5, max_upload_mb=20, max_batch=8, examples=4):
    """Builds the `AppState`: batcher, Grad-CAM model (Keras models only), example images."""
    from keras_geo.app import examples as example_images
    from keras_geo.app import gradcam

    cam_model = None
    if isinstance(predictor, predict.KerasPredictor):
        try:
            cam_model = gradcam.feature_map_model(predictor.model)
        except ValueError:
            cam_model = None  # The panel says why.
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="keras-geo-app-"))
    paths = example_images.draw_examples(predictor.class_names, work_dir, count=examples)
    return AppState(
        predictor=predictor,
        batcher=Batcher(predictor, max_batch=max_batch),
        model_name=model_name,
        top_k=min(top_k, len(predictor.class_names)),
        max_upload_bytes=int(max_upload_mb * 2**20),
        cam_model=cam_model,
        examples=paths,
        work_dir=work_dir,
    )


def build_app(state):
    """Returns the FastAPI app: `/api/*` routes, then the Gradio UI mounted at `/`."""
    import fastapi
    import gradio as gr
    from fastapi_offline import FastAPIOffline

    from keras_geo.app import schema, ui, uploads

    uploads.private_cache()  # Before Gradio builds anything: its cache is read then.
    # FastAPIOffline: FastAPI whose docs page loads Swagger UI from the package, not a CDN.
    app = FastAPIOffline(
        title="keras-geo",
        version=__version__,
        description="Name the country of a GeoGuessr screenshot.",
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=f"{DOCS_URL}/oauth2-redirect",
        static_url=f"{DOCS_URL}/static",
    )
    app.state.keras_geo = state

    @app.get("/api/health", response_model=schema.Health)
    def health():
        return {
            "status": "ok",
            "model": state.model_name,
            "model_info": state.model_info.to_json(),
            "classes": len(state.predictor.class_names),
        }

    @app.post(
        "/api/predict",
        response_model=schema.Prediction,
        responses=schema.ERRORS,
        openapi_extra=schema.UPLOAD_BODY,
    )
    async def predict_image(request: fastapi.Request):
        """The top-k countries of one screenshot, sent as multipart field `image`."""
        return await _predict_upload(state, request)

    # Without these the Gradio UI mounted at "/" would answer them, with 404.
    for path, method in API_METHODS.items():
        others = [m for m in _ALL_METHODS if m != method]
        app.add_api_route(
            path, _method_not_allowed(path, method), methods=others, include_in_schema=False
        )

    return gr.mount_gradio_app(
        app,
        ui.build_blocks(state),
        path="/",
        max_file_size=state.max_upload_bytes,
        allowed_paths=[str(state.work_dir)] if state.work_dir else None,
        footer_links=["api", "gradio", "settings"],  # "api": the Gradio client's /predict.
        run_history=False,  # Nothing kept in the browser, no Hugging Face bucket offer.
        ssr_mode=False,  # No Node server.
        mcp_server=False,
        enable_monitoring=False,
        show_error=True,
    )


def _error(status, message, headers=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _method_not_allowed(path, method):
    """A route handler answering 405, naming the one method `path` takes."""
    import fastapi

    async def answer(request: fastapi.Request):
        return _error(
            405,
            f"{request.method} is not allowed on {path}: use {method}",
            headers={"Allow": method},
        )

    return answer


async def _predict_upload(state, request):
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException

    limit = state.max_upload_bytes
    too_large = f"upload too large: over the {limit / 2**20:g} MB limit (--max-upload-mb)"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + _MULTIPART_SLACK:
        return _error(413, too_large)
    try:  # A body without Content-Length (chunked) is cut off as it streams in.
        # Up to `_MAX_PARTS` files are parsed (spooled, within the byte bound) so
        # that a second image is counted below, not told apart by Starlette's text.
        form = await _bounded(request, limit + _MULTIPART_SLACK).form(
            max_files=_MAX_PARTS, max_fields=_MAX_PARTS
        )
    except _BodyTooLarge:
        return _error(413, too_large)
    except HTTPException as error:  # Starlette's parser refused the body; say why.
        return _error(
            400,
            f"malformed multipart body ({error.detail}): send the file as field `{UPLOAD_FIELD}`",
        )
    except Exception:  # noqa: BLE001 (any malformed body is the client's)
        return _error(400, f"malformed multipart body: send the file as field `{UPLOAD_FIELD}`")
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if len(files) > 1:
        await form.close()
        return _error(400, f"one image per request: send a single multipart field `{UPLOAD_FIELD}`")
    upload = form.get(UPLOAD_FIELD)
    if not isinstance(upload, UploadFile):
        return _error(
            400,
            f"no file in multipart field `{UPLOAD_FIELD}`: "
            f"curl -F {UPLOAD_FIELD}=@screenshot.jpg URL/api/predict",
        )
    data = await upload.read(limit + 1)
    await form.close()
    if len(data) > limit:
        return _error(413, too_large)
    try:
        return await run_in_threadpool(state.answer, data, file=upload.filename or UPLOAD_FIELD)
    except ValueError as error:
        return _error(400, str(error))
    except Exception as error:  # noqa: BLE001 (the model failed, not the upload)
        return _error(500, f"the model call failed: {one_line(error)}")


class _BodyTooLarge(Exception):
    """The request body passed its limit while streaming in."""


def _bounded(request, limit):
    """`request` whose body stream raises `_BodyTooLarge` past `limit` bytes.

    Starlette spools a multipart body to a temporary file as it arrives and
    only then hands it over: without a Content-Length the whole body (1000 MB
    in a probe) was on disk before the size could be checked. Here reading
    stops at the first chunk over the limit; the server then answers 413 and
    closes the connection.
    """
    from starlette.requests import Request

    received = 0

    async def receive():
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge()
        return message

    return Request(request.scope, receive)
