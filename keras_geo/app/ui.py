"""The Gradio page: drop a screenshot, see the top countries, the map and the heatmap."""

import os

import gradio as gr
import numpy as np

from keras_geo import countries, divergence, images, predict
from keras_geo.app import gradcam, worldmap
from keras_geo.compat.gradio_image import screenshot_input
from keras_geo.errors import one_line
from tfds_geoguessr.geoguessr import limits

INTRO = (
    "# keras-geo\n"
    "Drop, paste or upload a GeoGuessr screenshot (JPEG, PNG, GIF, BMP or WebP, any size) "
    "to see which countries the model guesses.\n\n"
    "Model: **{summary}**"
)
SYNTHETIC_WARNING = (
    "**This model learned from synthetic drawn scenes, not real screenshots: its "
    "guesses on a real screenshot are chance.** Run `keras-geo app` without "
    "`--model` for the bundled model trained on real screenshots."
)
NEEDS_KERAS = (
    "Grad-CAM needs the Keras model: start the app with the run directory or "
    "the `.keras` file instead of an exported model."
)
HEATMAP_WIDTH = 480


def analyse(state, path):
    """Everything the page shows for one uploaded file.

    Returns:
        `(label, map_image, distances, heatmap_image, heatmap_note)`: a
        `{display name: probability}` dict of the top-k countries, the world map
        (RGB array), the runner-up distance line, the Grad-CAM overlay (RGB
        array, or None) and a note about it.

    Raises:
        gradio.Error: the file is not an image, corrupt or too large (one line).
    """
    if path is None:
        return None, None, "", None, ""
    try:
        image_bytes = limits.read_file(path, state.max_upload_bytes)
        if state.cam_model is None:  # Decoded once, by the predictor (a SavedModel: its graph).
            probabilities, frame = predict.probabilities_of(state.batcher, image_bytes), None
        else:  # Decoded once here: the model input and the heatmap's background.
            frame = images.decode(image_bytes)
            pixels = images.model_input(frame, state.predictor.image_size)
            probabilities = state.batcher.run(state.predictor.classify, pixels[None])[0]
            divergence.check_probabilities(probabilities)
    except ValueError as error:  # The upload: one line, never a server path.
        raise gr.Error(str(error), print_exception=False) from None
    except OSError:
        raise gr.Error(
            "the upload is gone: upload the image again", print_exception=False
        ) from None
    except Exception as error:  # noqa: BLE001 (the model, not the upload)
        raise gr.Error(f"the model call failed: {one_line(error)}", print_exception=False) from None
    names = state.predictor.class_names
    order = worldmap.top_classes(probabilities, state.top_k)
    label = {countries.get_country(names[i]).display_name: float(probabilities[i]) for i in order}
    world = worldmap.render_map(names, probabilities)
    distances = worldmap.runner_up_line(names, probabilities, top_k=state.top_k)
    heatmap, note = None, NEEDS_KERAS
    if frame is not None:
        heatmap, note = _heatmap(state, frame, pixels, int(order[0]))
    return label, world, distances, heatmap, note


def predict_endpoint(state):
    """Returns the function of the page's named API endpoint `/predict` (Gradio clients).

    It answers what `POST /api/predict` answers for the same file: the
    document of `AppState.answer`.
    """
    import gradio as gr

    def predict(image: gr.FileData) -> dict:
        """The top-k countries of one screenshot, with probabilities and coordinates."""
        upload = image if isinstance(image, dict) else image.model_dump()
        name = upload.get("orig_name") or os.path.basename(upload["path"])
        try:  # Within the upload budget, as the page reads (`limits.read_file`).
            image_bytes = limits.read_file(upload["path"], state.max_upload_bytes)
            return state.answer(image_bytes, file=name)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except OSError:
            raise gr.Error(
                "the upload is gone: upload the image again", print_exception=False
            ) from None

    return predict


def _heatmap(state, frame, pixels, class_index):
    """The Grad-CAM overlay on the decoded `frame`, computed from its model input `pixels`."""
    from PIL import Image

    heat = state.batcher.run(gradcam.gradcam, state.cam_model, pixels, class_index)
    image = Image.fromarray(frame)
    scale = HEATMAP_WIDTH / max(image.size)  # Small scenes up, big screenshots down.
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    background = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    country = countries.get_country(state.predictor.class_names[class_index]).display_name
    cells = f"{heat.shape[0]}x{heat.shape[1]}"
    note = f"Red: where the evidence for **{country}** lies (Grad-CAM on {cells} cells)."
    return gradcam.overlay(background, heat), note


def build_blocks(state):
    """Returns the `gr.Blocks` page bound to `state` (an `AppState`)."""
    # Uploads go to the app's private folder (`uploads.private_cache`), removed when it
    # stops; while it runs, Gradio's copies go after an hour.
    with gr.Blocks(title="keras-geo", analytics_enabled=False, delete_cache=(600, 3600)) as blocks:
        info = state.model_info
        gr.Markdown(INTRO.format(summary=info.summary()), elem_id="intro")
        if info.synthetic:
            gr.Markdown(SYNTHETIC_WARNING, elem_id="synthetic-warning")
        with gr.Row():
            with gr.Column(scale=2):
                image = screenshot_input(  # Checked by keras-geo before any decoding.
                    sources=["upload", "clipboard"],
                    label="Screenshot",
                    elem_id="screenshot",
                )
                if state.examples:
                    gr.Examples(
                        state.examples,
                        inputs=image,
                        label="Synthetic examples (drawn at start-up, not real screenshots)",
                    )
            with gr.Column(scale=1):
                label = gr.Label(
                    num_top_classes=state.top_k,
                    label="Top countries (SYNTHETIC demo model)"
                    if info.synthetic
                    else "Top countries",
                    elem_id="label",
                )
                distances = gr.Markdown(elem_id="distances")
        with gr.Row():
            world = gr.Image(
                label="World map", interactive=False, elem_id="worldmap", format="png", scale=3
            )
            with gr.Column(scale=2):
                heatmap = gr.Image(
                    label="What the model looked at (Grad-CAM)",
                    interactive=False,
                    elem_id="heatmap",
                    format="png",
                )
                note = gr.Markdown(NEEDS_KERAS if state.cam_model is None else "", elem_id="note")
        image.change(
            lambda path: analyse(state, path),
            inputs=image,
            outputs=[label, world, distances, heatmap, note],
            concurrency_limit=8,
            api_visibility="private",  # Images in, images out: `/predict` is the API.
        )
        gr.api(predict_endpoint(state), api_name="predict", concurrency_limit=8)
    return blocks
