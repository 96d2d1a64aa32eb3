"""A Gradio image input that hands the upload's path on without opening it.

Gradio's `Image.preprocess` opens the uploaded file with PIL and, for a mode
other than `image_mode`, decodes and converts it before the handler runs: a
164 KB PNG of 13000x13000 pixels cost 2 GB there, and a text file gave a
multi-line error naming server paths. With this input nothing is decoded
before `keras_geo.app.ui.analyse`, which checks the bytes first
(`keras_geo.images.check_image_bytes`). No upstream issue found.

The instance's `preprocess` is replaced: a subclass would make Gradio 6
write a `.pyi` stub next to the defining module each time it is imported.
Checked on gradio >=6.31,<7 (the `app` extra's pin);
`tests/test_environment.py::test_the_page_input_needs_its_workaround` fails
when Gradio's own preprocess stops opening the file, and this can go.
"""

import gradio as gr


def screenshot_input(**kwargs):
    """A `gr.Image(type="filepath", **kwargs)` whose upload reaches the handler unopened."""
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = _path_unopened
    return image


def _path_unopened(payload):
    """The uploaded file's path (the `FileData` Gradio saved), without reading it."""
    if payload is None:
        return None
    if payload.path is None:  # An inline data URL: only API clients send those.
        raise gr.Error("no file received: upload the image as a file", print_exception=False)
    return payload.path
