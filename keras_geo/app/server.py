"""The FastAPI application: the JSON API next to the mounted Gradio UI.

    GET  /api/health   -> {"status": "ok", "model": NAME, "classes": C}
    POST /api/predict  multipart field `image` -> one `keras-geo predict --json`
                       entry (`file`, `countries`, `probabilities`, `coordinates`)
                       plus `model`; a bad upload -> 4xx {"error": "<one line>"}
    other methods on /api/* -> 405 {"error": ...} with an `Allow` header
    /                  the Gradio UI (`keras_geo.app.ui`)

Every model call goes through one `Batcher` (see `keras_geo.app.batching`).
"""

import dataclasses
import pathlib
import shutil
import tempfile

from keras_geo import predict
from keras_geo.app.batching import Batcher
from keras_geo.errors import one_line

UPLOAD_FIELD = "image"
# Each API route and its one method: any other method gets 405, not the UI's 404.
API_METHODS = {"/api/health": "GET", "/api/predict": "POST"}
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_MULTIPART_SLACK = 64 * 1024  # Boundaries and headers around the file in a request body.


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

    predictor: object
    batcher: Batcher
    model_name: str
    top_k: int
    max_upload_bytes: int
    cam_model: object = None
    examples: list = dataclasses.field(default_factory=list)
    work_dir: pathlib.Path = None

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

    from keras_geo.app import ui

    app = fastapi.FastAPI(title="keras-geo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.keras_geo = state

    @app.get("/api/health")
    def health():
        return {
            "status": "ok",
            "model": state.model_name,
            "classes": len(state.predictor.class_names),
        }

    @app.post("/api/predict")
    async def predict_image(request: fastapi.Request):
        return await _predict_upload(state, request)

    # Without these the Gradio UI mounted at "/" would answer them, with 404.
    for path, method in API_METHODS.items():
        others = [m for m in _ALL_METHODS if m != method]
        app.add_api_route(path, _method_not_allowed(path, method), methods=others)

    return gr.mount_gradio_app(
        app,
        ui.build_blocks(state),
        path="/",
        max_file_size=state.max_upload_bytes,
        allowed_paths=[str(state.work_dir)] if state.work_dir else None,
        footer_links=["gradio", "settings"],  # Our API is /api/*, not Gradio's.
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
    try:
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException as error:  # Starlette's parser refused the body; say why.
        if "Too many files" in str(error.detail):
            return _error(
                400, f"one image per request: send a single multipart field `{UPLOAD_FIELD}`"
            )
        return _error(
            400,
            f"malformed multipart body ({error.detail}): send the file as field `{UPLOAD_FIELD}`",
        )
    except Exception:  # noqa: BLE001 (any malformed body is the client's)
        return _error(400, f"malformed multipart body: send the file as field `{UPLOAD_FIELD}`")
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
        document = await run_in_threadpool(
            predict.predict_bytes,
            state.batcher,
            data,
            file=upload.filename or UPLOAD_FIELD,
            top_k=state.top_k,
        )
    except ValueError as error:
        return _error(400, str(error))
    except Exception as error:  # noqa: BLE001 (the model failed, not the upload)
        return _error(500, f"the model call failed: {one_line(error)}")
    return {**document, "model": state.model_name}
