"""The Gradio page: drop a screenshot, see the top countries, the map and the heatmap."""

import io
import pathlib

import numpy as np

from keras_geo import countries, predict
from keras_geo.app import gradcam, worldmap

INTRO = (
    "# keras-geo\n"
    "Drop, paste or upload a GeoGuessr screenshot (JPEG, PNG, GIF, BMP or WebP, any size) "
    "to see which countries the model **`{model}`** guesses."
)
NEEDS_KERAS = (
    "Grad-CAM needs the Keras model: start the app with the run directory or "
    "the `.keras` file instead of the SavedModel."
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
    import gradio as gr

    if path is None:
        return None, None, "", None, ""
    image_bytes = pathlib.Path(path).read_bytes()
    try:
        probabilities = predict.probabilities_of(state.batcher, image_bytes)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
    names = state.predictor.class_names
    order = worldmap.top_classes(probabilities, state.top_k)
    label = {countries.get_country(names[i]).display_name: float(probabilities[i]) for i in order}
    world = worldmap.render_map(names, probabilities)
    distances = worldmap.runner_up_line(names, probabilities, top_k=state.top_k)
    heatmap, note = _heatmap(state, image_bytes, int(order[0]))
    return label, world, distances, heatmap, note


def _heatmap(state, image_bytes, class_index):
    if state.cam_model is None:
        return None, NEEDS_KERAS
    from PIL import Image

    heat = gradcam.gradcam(state.cam_model, state.predictor.pixels(image_bytes), class_index)
    with Image.open(io.BytesIO(image_bytes)) as image:
        image = image.convert("RGB")
        scale = HEATMAP_WIDTH / max(image.size)  # Small scenes up, big screenshots down.
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    country = countries.get_country(state.predictor.class_names[class_index]).display_name
    cells = f"{heat.shape[0]}x{heat.shape[1]}"
    note = f"Red: where the evidence for **{country}** lies (Grad-CAM on {cells} cells)."
    return gradcam.overlay(pixels, heat), note


def build_blocks(state):
    """Returns the `gr.Blocks` page bound to `state` (an `AppState`)."""
    import gradio as gr

    # Uploaded screenshots are not kept: Gradio's copies go after an hour.
    with gr.Blocks(title="keras-geo", analytics_enabled=False, delete_cache=(600, 3600)) as blocks:
        gr.Markdown(INTRO.format(model=state.model_name))
        with gr.Row():
            with gr.Column(scale=2):
                image = gr.Image(
                    type="filepath",
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
                    num_top_classes=state.top_k, label="Top countries", elem_id="label"
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
            api_visibility="private",
        )
    return blocks
