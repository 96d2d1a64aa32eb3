"""An offline world map of one prediction: class countries shaded by probability.

Borders come from `countryinfo`'s GeoJSON (shipped with the package: no tiles,
no CDN, no network) and are drawn with matplotlib's Agg backend in plain
longitude/latitude (equirectangular) coordinates. A class country countryinfo
has no border for (Singapore, Hong Kong, small islands) is drawn as a dot at
its point. The top guess gets a star; `runner_up_line` says how far the other
guesses are from it.
"""

import functools

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from keras_geo import countries

CMAP = "YlOrRd"
LAND = "#e9e9e6"
BORDER = "#9a9a9a"
SEA = "#f4f8fb"
STAR = "#00e5ff"  # Cyan: stands out on the pale yellow and the dark red of CMAP alike.
STAR_EDGE = "#000000"
LAT_RANGE = (-58.0, 88.0)  # Greenland reaches 83.7 N: a margin keeps its north coast inside.


@functools.cache
def borders():
    """Returns `{iso2: [rings]}`, each ring an `[N, 2]` array of (lon, lat), for every country."""
    from countryinfo import all_countries

    table = {}
    for info in all_countries():
        features = (info.geo_json() or {}).get("features") or []
        rings = [np.asarray(ring, dtype=np.float64) for f in features for ring in _rings(f)]
        if rings:
            table[info.iso(2)] = rings
    return table


def _rings(feature):
    geometry = feature.get("geometry") or {}
    polygons = geometry.get("coordinates") or []
    if geometry.get("type") == "Polygon":
        polygons = [polygons]
    return [polygon[0] for polygon in polygons if polygon]  # Outer rings only.


def top_classes(probabilities, top_k):
    """Indices of the `top_k` largest probabilities, best first (ties: lower index first)."""
    return np.argsort(-np.asarray(probabilities), kind="stable")[:top_k]


def draw_map(ax, class_names, probabilities):
    """Draws the world, the class countries shaded by probability and a star on the top guess.

    Args:
        ax: a matplotlib Axes; its limits become longitude -180..180 and `LAT_RANGE`.
        class_names: the model's countries (Kaggle folder names), class order.
        probabilities: `[C]` probabilities in class order.

    Returns:
        The `Normalize` that maps a probability to `CMAP` (0 to the top probability).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    table = [countries.get_country(name) for name in class_names]
    world = borders()
    norm = Normalize(0.0, max(float(probabilities.max()), 1e-9))
    cmap = colormaps[CMAP]
    ax.set_facecolor(SEA)
    ax.add_collection(
        PolyCollection(
            [ring for rings in world.values() for ring in rings],
            facecolors=LAND,
            edgecolors=BORDER,
            linewidths=0.3,
        )
    )
    shaded, colours, dots = [], [], []
    for country, p in zip(table, probabilities, strict=True):
        rings = world.get(country.iso2)
        if rings:
            shaded += rings
            colours += [cmap(norm(p))] * len(rings)
        else:
            dots.append((country.longitude, country.latitude, cmap(norm(p))))
    ax.add_collection(
        PolyCollection(shaded, facecolors=colours, edgecolors="#5a5a5a", linewidths=0.4)
    )
    if dots:
        lon, lat, c = zip(*dots, strict=True)
        ax.scatter(lon, lat, s=28, c=list(c), edgecolors="#3a3a3a", linewidths=0.6, zorder=3)
    top = table[int(np.argmax(probabilities))]
    ax.plot(
        top.longitude, top.latitude, marker="*", ms=22, color=STAR, mec=STAR_EDGE, mew=1.2, zorder=4
    )
    ax.set_xlim(-180, 180)
    ax.set_ylim(min(LAT_RANGE[0], *(c.latitude - 5 for c in table)), LAT_RANGE[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    ax.set_aspect("auto")
    return norm


def render_map(class_names, probabilities, *, width_px=960):
    """Renders `draw_map` with a colour bar to an RGB image.

    Returns:
        uint8 array `[H, W, 3]`, `W == width_px`.
    """
    dpi = 100
    latitudes = [countries.get_country(name).latitude for name in class_names]
    lat_span = LAT_RANGE[1] - min(LAT_RANGE[0], *(lat - 5 for lat in latitudes))
    map_width = 0.9  # Of the figure; the colour bar takes the rest.
    height_px = width_px * map_width * lat_span / 360
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0.0, 0.0, map_width, 1.0))
    norm = draw_map(ax, class_names, probabilities)
    bar_ax = figure.add_axes((map_width + 0.01, 0.1, 0.015, 0.8))
    figure.colorbar(_mappable(norm), cax=bar_ax, format=PercentFormatter(xmax=1.0, decimals=0))
    bar_ax.set_title("%", fontsize=9)  # As the list of top countries.
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _mappable(norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=CMAP)


def runner_up_line(class_names, probabilities, *, top_k=5):
    """Says how far the runner-up guesses are from the top guess (not from the truth).

    Example:
        With France 0.6, Germany 0.3 and Japan 0.1 the line reads "Top guess:
        France (60%). Runner-up guesses and their distance from the top guess:
        Germany (30%) 724 km, Japan (10%) 9,714 km."
    """
    order = top_classes(probabilities, top_k)
    best = countries.get_country(class_names[order[0]])
    line = f"Top guess: {best.display_name} ({100 * probabilities[order[0]]:.0f}%)."
    others = []
    for i in order[1:]:
        other = countries.get_country(class_names[i])
        km = countries.haversine_km(best.latitude, best.longitude, other.latitude, other.longitude)
        others.append(f"{other.display_name} ({100 * probabilities[i]:.0f}%) {float(km):,.0f} km")
    heading = " Runner-up guesses and their distance from the top guess: "
    return line + (f"{heading}{', '.join(others)}." if others else "")
