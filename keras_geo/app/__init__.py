"""`keras-geo app`: a Gradio page and a JSON API over `keras_geo.predict`, from one process.

The app is a thin face over `predict` (decoding, the model call and the answer
document live there); it adds the layout (`ui`), the world map (`worldmap`),
the Grad-CAM heatmap (`gradcam`), batching of concurrent requests
(`batching`), synthetic example inputs (`examples`) and a private folder for
the page's uploads (`uploads`). Nothing here calls the
network: Gradio analytics are off and no share link is made.
"""

import os

# Before gradio is imported anywhere: no usage analytics, no version check.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
