"""The JSON API's documents as pydantic models: FastAPI checks answers and writes OpenAPI.

`keras-geo app` serves the schema at `/api/openapi.json` and renders it at
`/api/docs` (Gradio serves its own `/openapi.json` at the root). The upload
is read by hand (limits before parsing, one-line errors), so its multipart
body is declared here as `UPLOAD_BODY` instead of from a function parameter.
"""

import pydantic

UPLOAD_FIELD = "image"


class ModelInfo(pydantic.BaseModel):
    """What the served model is (`keras_geo.model_info.ModelInfo.to_json`)."""

    name: str = pydantic.Field(examples=["keras-geo bundled top20 model"])
    dataset: str | None = pydantic.Field(
        description="the TFDS data it learned from (null if unknown)", examples=["geoguessr/top20"]
    )
    synthetic: bool = pydantic.Field(
        description="true for a demo trained on drawn scenes: its guesses are not real"
    )
    test: dict[str, float] | None = pydantic.Field(
        description="its test-split accuracy, balanced_accuracy, top5_accuracy (fractions) "
        "and num_examples, as measured by `keras-geo evaluate` (null if unknown)",
        examples=[{"accuracy": 0.47, "balanced_accuracy": 0.33, "top5_accuracy": 0.82}],
    )
    summary: str = pydantic.Field(description="one line for people")


class Health(pydantic.BaseModel):
    """`GET /api/health`: the app is up and which model it serves."""

    status: str = pydantic.Field(examples=["ok"])
    model: str = pydantic.Field(description="the --model the app serves", examples=["runs/demo"])
    model_info: ModelInfo
    classes: int = pydantic.Field(description="countries the model knows", examples=[20])


class Prediction(pydantic.BaseModel):
    """`POST /api/predict`: one entry of `keras-geo predict --json`, plus the model."""

    file: str = pydantic.Field(description="the upload's file name", examples=["shot.jpg"])
    countries: list[str] = pydantic.Field(
        description="the top-k countries, best first", examples=[["Japan", "Thailand"]]
    )
    probabilities: list[float] = pydantic.Field(
        description="their probabilities, same order", examples=[[0.61, 0.12]]
    )
    coordinates: list[list[float]] | None = pydantic.Field(
        description="[latitude, longitude] of each country's point, degrees (null if unknown)",
        examples=[[[36.0, 138.0], [15.0, 100.0]]],
    )
    model: str = pydantic.Field(examples=["runs/demo"])
    model_info: ModelInfo


class Error(pydantic.BaseModel):
    """Every 4xx and 5xx answer: one line saying what is wrong."""

    error: str = pydantic.Field(examples=["not an image (JPEG, PNG, GIF, BMP or WebP expected)"])


ERRORS = {
    400: {"model": Error, "description": "Not an image, corrupt, too many pixels, no `image`."},
    413: {"model": Error, "description": "Upload over --max-upload-mb."},
    500: {"model": Error, "description": "The model call failed."},
}

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {
                        UPLOAD_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "a screenshot: JPEG, PNG, GIF, BMP or WebP, any size",
                        }
                    },
                }
            }
        },
    }
}
