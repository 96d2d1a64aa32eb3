"""Where the page's uploads go: a private folder, removed when the app stops.

Gradio writes every upload, and its processed copies, to its cache folder
(`GRADIO_TEMP_DIR`, by default a shared, world-readable `/tmp/gradio` that
outlives the app), and `gr.Image` opens and often converts the image with
PIL before the event handler runs: a 164 KB PNG of 13000x13000 pixels cost
2 GB there, before keras-geo's budget was ever checked, and a text file gave
a multi-line error naming server paths. So:

- `private_cache()` points Gradio's cache at a fresh folder only this user
  can read (`tempfile.mkdtemp`, mode 0700; inside `GRADIO_TEMP_DIR` if that
  is set), removed by `remove_private_cache()` when the app stops and at
  interpreter exit. `keras-geo app` calls it before gradio is imported
  (gradio reads the variable at import for some of its folders);
- `keras_geo.compat.gradio_image.screenshot_input` hands the handler the uploaded file's
  path without opening it: the bytes then meet
  `keras_geo.images.check_image_bytes`, the same budget as the JSON API
  and `keras-geo predict`.

No gradio import here, so that the folder can be set up before gradio's.
"""

import atexit
import os
import shutil
import tempfile

_ENV = "GRADIO_TEMP_DIR"
_folder = None  # This process's private cache: Gradio's cache is per process too.


def private_cache():
    """Creates (once per process) the private upload folder and points Gradio at it.

    Returns:
        The folder's path (str).
    """
    global _folder
    if _folder is None or not os.path.isdir(_folder):
        parent = os.environ.get(_ENV) if _folder is None else os.path.dirname(_folder)
        if parent:
            os.makedirs(parent, exist_ok=True)
        _folder = tempfile.mkdtemp(prefix="keras-geo-uploads-", dir=parent or None)
        atexit.register(shutil.rmtree, _folder, ignore_errors=True)
    os.environ[_ENV] = _folder  # Gradio reads it when building the app and at each upload.
    return _folder


def remove_private_cache():
    """Deletes the private upload folder and everything Gradio put in it."""
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
