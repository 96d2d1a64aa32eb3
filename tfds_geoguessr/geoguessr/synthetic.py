"""SYNTHETIC street scenes for the `geoguessr/synthetic` config (not real data).

Nothing here comes from Street View or from the Kaggle dataset: every image is
drawn with NumPy from a random generator, so the project runs (and its tests
pass) with no download. A scene is a two-lane road converging to a vanishing
point, with sky, ground, vegetation, maybe buildings, a warning sign, a
utility pole, bollards and an oncoming car, plus a GeoGuessr-style UI overlay
(score box, minimap, control column, navigation chevrons) that is the same for
every country: it is noise, not a cue.

The country decides the cues in `CUES` (one `CountryCues` per country, read
from the table `synthetic_cues.csv`; climates from `synthetic_climates.csv`),
which are loosely modelled on real-world "GeoGuessr meta" facts, approximately:

- driving side: the camera sits in the left lane in left-hand-traffic
  countries, so the centre line is right of the image centre, the oncoming car
  on the right and the kerb-side sign, pole and bollards on the left;
- centre-line colour and style, edge-line colour and style;
- sky and vegetation palettes by climate (boreal, temperate, mediterranean,
  arid, tropical, ...), tree shape, snow probability, soil colour, mountains;
- warning-sign shape/colour, bollard style, utility-pole material, building
  density and colours, overcast probability.

The cues are approximate and simplified; models trained on these images learn
nothing about real countries. Everything random comes from the `rng` passed to
`draw_scene`, so a seed gives the same image on any machine.

Example:
    >>> rng = np.random.default_rng(0)
    >>> draw_scene("Japan", rng, size=64).shape
    (64, 64, 3)
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from typing import NamedTuple

import numpy as np
from etils import epath

_YELLOW = (0.93, 0.75, 0.12)
_WHITE = (0.95, 0.95, 0.93)


# Palettes (RGB in 0..1) of facades and soil, by their names in `synthetic_cues.csv`.
FACADES = {
    "brick": ((0.55, 0.28, 0.20), (0.62, 0.35, 0.25), (0.48, 0.25, 0.20)),
    "plaster": ((0.92, 0.90, 0.84), (0.85, 0.82, 0.74), (0.80, 0.78, 0.76)),
    "grey": ((0.70, 0.70, 0.70), (0.82, 0.82, 0.80), (0.55, 0.56, 0.58)),
    "ochre": ((0.85, 0.65, 0.40), (0.80, 0.50, 0.32), (0.92, 0.82, 0.62)),
    "bright": ((0.90, 0.45, 0.55), (0.35, 0.60, 0.85), (0.95, 0.80, 0.30), (0.45, 0.75, 0.50)),
    "wooden": ((0.60, 0.15, 0.12), (0.90, 0.88, 0.80), (0.85, 0.75, 0.45)),
}
SOILS = {"dark": (0.42, 0.38, 0.30), "red": (0.66, 0.34, 0.20), "tan": (0.74, 0.62, 0.45)}


@dataclasses.dataclass(frozen=True)
class CountryCues:
    """The visual cues of one country in the synthetic scenes (a row of `synthetic_cues.csv`).

    Attributes:
        drive: "left" or "right": side of the road the traffic drives on.
        centre: centre-line colour, "yellow" or "white".
        centre_style: "dashed", "solid" or "double" (double solid).
        edge: edge-line style: "white", "white_dashed", "yellow" or "none".
        climate: key of `CLIMATES` (sky, grass, foliage, tree shape).
        sign: warning sign: "diamond_yellow", "triangle_white" (red border,
            white face) or "triangle_yellow" (red border, yellow face).
        bollard: "none", "white_red", "white_black", "black_yellow",
            "black_white" or "striped" (black/white striped kerb posts).
        pole: utility-pole material: "wood", "concrete" or "none".
        wires: number of overhead wires from the pole.
        buildings: probability that a scene has roadside buildings.
        building_colours: facade colours (RGB in 0..1) to pick from (`FACADES`).
        soil: colour of the verge / bare soil (RGB in 0..1, `SOILS`).
        snow: probability of a snowy scene.
        overcast: probability of a grey, overcast sky.
        mountains: whether distant mountains show on the horizon.
    """

    drive: str
    centre: str
    centre_style: str
    edge: str
    climate: str
    sign: str
    bollard: str
    pole: str
    wires: int
    buildings: float
    building_colours: tuple
    soil: tuple
    snow: float
    overcast: float
    mountains: bool


class Climate(NamedTuple):
    """Palette of a climate (RGB in 0..1) and the shape of its trees."""

    sky_top: tuple
    sky_horizon: tuple
    grass: tuple
    foliage: tuple
    trees: str  # "conifer", "broadleaf", "palm", "shrub" or "sparse"


def _read_table(name):
    """Rows of the CSV table `name` beside this module: {first column: {column: text}}.

    The tables are part of the versioned `geoguessr/synthetic` data: any
    change to them changes the drawn images.
    """
    text = (epath.Path(__file__).parent / name).read_text()
    rows = csv.DictReader(text.splitlines(), skipinitialspace=True)
    key = rows.fieldnames[0]
    return {row.pop(key): row for row in rows}


def _rgb(text):
    return tuple(float(part) for part in text.split())


def _country_cues(row):
    """A `CountryCues` from a row of `synthetic_cues.csv`: palettes by name, yes/no."""
    parse = {"str": str, "int": int, "float": float, "bool": {"yes": True, "no": False}.__getitem__}
    values = {
        field.name: parse[field.type](row[field.name])
        for field in dataclasses.fields(CountryCues)
        if field.type in parse
    }
    return CountryCues(
        **values, building_colours=FACADES[row["building_colours"]], soil=SOILS[row["soil"]]
    )


CLIMATES = {
    name: Climate(*(_rgb(row[part]) for part in Climate._fields[:4]), trees=row["trees"])
    for name, row in _read_table("synthetic_climates.csv").items()
}
CUES = {country: _country_cues(row) for country, row in _read_table("synthetic_cues.csv").items()}

COUNTRIES = tuple(sorted(CUES))


@dataclasses.dataclass(frozen=True)
class _Geom:
    """Per-image layout, all in fractions of the image size."""

    horizon: float  # row of the horizon
    vx: float  # column of the vanishing point
    lane: float  # lane width at the bottom row
    side: int  # +1: camera in the right lane (right-hand traffic), -1: left
    curve: float  # lateral bend of the far road


@functools.lru_cache(maxsize=8)
def _grid(size):
    """Pixel-centre coordinates in 0..1: (Y [S,1], X [1,S])."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    c.flags.writeable = False
    return c[:, None], c[None, :]


def _jitter(rng, colour, amount=0.06):
    """Colour with multiplicative per-channel noise."""
    c = np.asarray(colour, np.float32) * (1 + amount * rng.standard_normal(3))
    return np.minimum(np.maximum(c, 0), 1).astype(np.float32)


def _noise1d(rng, size, cells):
    """Smooth 1-D noise in 0..1 over `size` samples."""
    knots = rng.random(cells + 1)
    return np.interp(np.linspace(0, cells, size), np.arange(cells + 1), knots)


def _noise2d(rng, size, cells):
    """Smooth 2-D noise in 0..1, bilinear from a (cells+1)^2 grid."""
    knots = rng.random((cells + 1, cells + 1)).astype(np.float32)
    p = np.linspace(0, cells, size, dtype=np.float32)
    i = np.minimum(p.astype(int), cells - 1)
    f = p - i
    rows = knots[i] * (1 - f)[:, None] + knots[i + 1] * f[:, None]
    return rows[:, i] * (1 - f) + rows[:, i + 1] * f


def _paint(img, mask, colour, alpha=1.0):
    """Blend `colour` into `img` where `mask` (bool or 0..1 float) is set."""
    colour = np.asarray(colour, np.float32)
    mask = np.broadcast_to(mask, img.shape[:2])
    if mask.dtype == bool:
        if alpha == 1.0:
            img[mask] = colour
        else:
            img[mask] = img[mask] * (1 - alpha) + alpha * colour
        return
    a = mask[..., None].astype(np.float32) * alpha
    img *= 1 - a
    img += a * colour


def _fill_rect(img, x0, x1, y0, y1, colour, alpha=1.0):
    """Paints the axis-aligned box [x0, x1) x [y0, y1) (fractions) by slicing."""
    size = img.shape[0]
    c0, c1 = (min(max(round(v * size), 0), size) for v in (x0, x1))
    r0, r1 = (min(max(round(v * size), 0), size) for v in (y0, y1))
    patch = img[r0:r1, c0:c1]
    patch *= 1 - alpha
    patch += alpha * np.asarray(colour, np.float32)


def _road_x(geom, t):
    """Column of the road centre line at depth t (0 horizon, 1 bottom row)."""
    return geom.vx + geom.curve * (1 - t) ** 3 - geom.side * t * geom.lane / 2


def _row(geom, t):
    return geom.horizon + t * (1 - geom.horizon)


def _draw_sky(img, rng, cues, geom, size):
    top, hor, *_ = CLIMATES[cues.climate]
    Y, _ = _grid(size)
    if rng.random() < cues.overcast:
        grey = rng.uniform(0.6, 0.85)
        top, hor = (grey - 0.08,) * 3, (grey + 0.08,) * 3
    tint = 0.01 if top[0] == top[1] else 0.04  # keep grey skies grey
    top, hor = _jitter(rng, top, tint), _jitter(rng, hor, tint * 0.75)
    f = np.clip(Y / geom.horizon, 0, 1) ** 0.7
    sky = (top * (1 - f)[..., None] + hor * f[..., None]) * np.ones((1, size, 1))
    img[:] = sky
    cover = rng.uniform(0.35, 0.75)
    clouds = np.clip((_noise2d(rng, size, 4) - cover) * 4, 0, 1)
    _paint(img, clouds * (Y < geom.horizon), (0.97, 0.97, 0.98), 0.9)


def _draw_skyline(img, rng, cues, geom, size, snowy):
    """Mountains and the tree line just above the horizon."""
    _, _, _, foliage, shape = CLIMATES[cues.climate]
    Y, X = _grid(size)
    h = geom.horizon
    if cues.mountains:
        ridge = h - rng.uniform(0.04, 0.14) * _noise1d(rng, size, 3)[None, :]
        col = _jitter(rng, (0.45, 0.50, 0.60) if not snowy else (0.85, 0.87, 0.9))
        _paint(img, (Y > ridge) & (Y < h), col, 0.9)
    away = np.abs(X - geom.vx)
    if shape == "conifer":
        freq = rng.uniform(18, 30)
        tooth = np.abs((X * freq + rng.random()) % 1 - 0.5) * 2
        height = (0.05 + 0.25 * away) * (0.55 + 0.45 * (1 - tooth))
    elif shape == "broadleaf":
        bumps = np.abs(np.sin((X * rng.uniform(10, 18) + rng.random()) * np.pi))
        height = (0.04 + 0.2 * away) * (0.7 + 0.3 * np.sqrt(bumps))
    elif shape == "palm":
        height = (0.05 + 0.22 * away) * (0.6 + 0.4 * _noise1d(rng, size, 8))
    else:  # shrub / sparse: low, broken vegetation
        keep = _noise1d(rng, size, 10) > (0.35 if shape == "shrub" else 0.55)
        height = (0.015 + 0.06 * away) * keep
    col = _jitter(rng, foliage, 0.1)
    _paint(img, (Y > h - height) & (Y < h + 0.005), col)
    if snowy:
        _paint(img, (Y > h - height) & (Y < h - height + 0.02), (0.93,) * 3, 0.8)
    if shape == "palm":
        _draw_palms(img, rng, geom, size, col)


def _draw_near_trees(img, rng, cues, geom, size, snowy):
    """A mass of trees close to the camera on one side (framing, as on real frames)."""
    climate = CLIMATES[cues.climate]
    if climate.trees in ("sparse", "shrub") or rng.random() < 0.5:
        return
    Y, X = _grid(size)
    s = rng.choice([-1, 1])
    edge = rng.uniform(0.12, 0.3) + 0.12 * _noise1d(rng, size, 6)[:, None]
    if climate.trees == "conifer":  # jagged outline
        edge = edge + 0.05 * np.abs((Y * rng.uniform(10, 16)) % 1 - 0.5)
    top = geom.horizon - rng.uniform(0.2, 0.4)
    bottom = geom.horizon + rng.uniform(0.05, 0.15)
    out = s * (X - 0.5) - edge  # > 0 inside the mass, growing towards the border
    mask = (out > 0) & (Y > top - 0.6 * out) & (Y < bottom + 0.3 * out)
    tex = 0.75 + 0.5 * _noise2d(rng, size, 10)[..., None]
    colour = _jitter(rng, climate.foliage, 0.1) * 0.85
    if snowy:
        colour = colour * 0.5 + 0.45
    img[:] = np.where(mask[..., None], colour * tex, img)


def _draw_palms(img, rng, geom, size, col):
    Y, X = _grid(size)
    for _ in range(rng.integers(1, 4)):
        x = rng.choice([rng.uniform(0.02, geom.vx - 0.2), rng.uniform(geom.vx + 0.2, 0.98)])
        top = geom.horizon - rng.uniform(0.15, 0.35)
        trunk = (np.abs(X - x) < 0.008 + 0.5 / size) & (Y > top) & (Y < geom.horizon)
        _paint(img, trunk, (0.45, 0.38, 0.30))
        crown = ((X - x) / 2.2) ** 2 + (Y - top) ** 2 < rng.uniform(0.04, 0.06) ** 2
        _paint(img, crown, col * 1.1)


def _draw_ground(img, rng, cues, geom, size, snowy):
    _, _, grass, *_ = CLIMATES[cues.climate]
    Y, X = _grid(size)
    amount = 0.015 if snowy else 0.08  # snow stays white, not pink
    colour = _jitter(rng, (0.9, 0.91, 0.94) if snowy else grass, amount)
    tex = 0.85 + 0.3 * _noise2d(rng, size, 8)[..., None]
    below = Y >= geom.horizon
    img[:] = np.where(below[..., None], colour * tex, img)
    t = np.clip((Y - geom.horizon) / (1 - geom.horizon), 0, 1)
    xc = _road_x(geom, t)
    verge = np.abs(X - xc) < t * geom.lane * rng.uniform(1.15, 1.4)
    soil = _jitter(rng, (0.8, 0.8, 0.82) if snowy else cues.soil, amount)
    _paint(img, verge & below, soil)


def _draw_buildings(img, rng, cues, geom, size):
    """Facades along one or both sides, in perspective, with windows."""
    Y, X = _grid(size)
    h, vx = geom.horizon, geom.vx
    away = np.abs(X - vx)
    sides = [s for s in (-1, 1) if rng.random() < 0.75] or [rng.choice([-1, 1])]
    breaks = np.sort(rng.random(5))
    seg = np.searchsorted(breaks, X[0])
    tall = rng.uniform(0.4, 1.6 if cues.buildings > 0.8 else 0.9, 6)[seg]
    for s in sides:
        on_side = (np.sign(X - vx) == s) & (away > 0.06)
        top = h - (0.02 + tall * away)
        bottom = h + 0.35 * away
        mask = on_side & (Y > top) & (Y < bottom)
        colours = [
            _jitter(rng, cues.building_colours[i % len(cues.building_colours)], 0.05)
            for i in rng.permutation(6)
        ]
        facade = np.asarray(colours, np.float32)[seg][None, :, :]
        img[:] = np.where(mask[..., None], facade, img)
        v = (Y - top) / np.maximum(bottom - top, 1e-3)
        depth = 0.25 / np.maximum(away, 0.02)
        win = ((depth % 1) < 0.45) & ((v * 6) % 1 < 0.45) & (v < 0.8)
        _paint(img, mask & win, (0.25, 0.30, 0.38), 0.7)


def _draw_road(img, rng, cues, geom, size):
    Y, X = _grid(size)
    below = Y > geom.horizon
    t = np.clip((Y - geom.horizon) / (1 - geom.horizon), 1e-4, 1)
    xc = _road_x(geom, t)
    dx = X - xc
    asphalt = _jitter(rng, (rng.uniform(0.3, 0.5),) * 3, 0.03)
    tex = 0.92 + 0.16 * _noise2d(rng, size, 12)[..., None]
    road = below & (np.abs(dx) < t * geom.lane)
    img[:] = np.where(road[..., None], asphalt * tex, img)
    lw = t * geom.lane * rng.uniform(0.035, 0.05)
    depth = 1 / t
    centre = _jitter(rng, _YELLOW if cues.centre == "yellow" else _WHITE, 0.05)
    if cues.centre_style == "double":
        line = np.abs(np.abs(dx) - 1.6 * lw) < lw
    elif cues.centre_style == "dashed":
        line = (np.abs(dx) < lw) & ((depth * 0.5 + rng.random()) % 1 < 0.45)
    else:
        line = np.abs(dx) < lw
    _paint(img, line & below, centre)
    if cues.edge != "none":
        edge = np.abs(np.abs(dx) - 0.92 * t * geom.lane) < lw * 0.8
        if cues.edge == "white_dashed":
            edge &= (depth * 0.8 + rng.random()) % 1 < 0.7
        colour = _YELLOW if cues.edge == "yellow" else _WHITE
        _paint(img, edge & below, _jitter(rng, colour, 0.05))


def _window(size, x0, x1, y0, y1):
    """Slices of the box [x0, x1) x [y0, y1) (fractions) and its local grid."""
    c0, c1 = (min(max(int(v * size), 0), size) for v in (x0, x1 + 1 / size))
    r0, r1 = (min(max(int(v * size), 0), size) for v in (y0, y1 + 1 / size))
    Y, X = _grid(size)
    return (slice(r0, r1), slice(c0, c1)), Y[r0:r1], X[:, c0:c1]


def _draw_car(img, rng, geom):
    """An oncoming car in the opposite lane (the other side of the line)."""
    t = rng.uniform(0.1, 0.3)
    x = _road_x(geom, t) - geom.side * t * geom.lane / 2
    w, hgt, y = t * geom.lane * 0.42, t * geom.lane * 0.55, _row(geom, t)
    body = _jitter(
        rng,
        rng.choice([(0.8, 0.1, 0.1), (0.9, 0.9, 0.9), (0.15, 0.15, 0.2), (0.2, 0.3, 0.7)]),
        0.1,
    )
    _fill_rect(img, x - w, x + w, y - hgt, y, body)
    _fill_rect(img, x - w * 0.8, x + w * 0.8, y - hgt * 0.9, y - hgt * 0.55, (0.15, 0.18, 0.22))
    for s in (-1, 1):  # headlights: it faces the camera
        c = x + s * w * 0.6
        _fill_rect(
            img,
            c - w * 0.25,
            c + w * 0.25,
            y - hgt * 0.4,
            y - hgt * 0.2,
            (1.0, 1.0, 0.85),
        )


def _kerb_x(geom, t, out):
    """Column beside the road on the kerb side (traffic side), `out` lanes out."""
    return _road_x(geom, t) + geom.side * t * geom.lane * (1 + out)


_BOLLARDS = {
    "white_red": ((0.95, 0.95, 0.95), (0.85, 0.1, 0.1)),
    "white_black": ((0.95, 0.95, 0.95), (0.05, 0.05, 0.05)),
    "black_yellow": ((0.08, 0.08, 0.08), (0.95, 0.8, 0.1)),
    "black_white": ((0.08, 0.08, 0.08), (0.95, 0.95, 0.95)),
    "striped": ((0.95, 0.95, 0.95), (0.05, 0.05, 0.05)),
}


def _draw_bollards(img, rng, cues, geom):
    """Kerb-side posts at regular spacing along the road (perspective)."""
    body, band = _BOLLARDS[cues.bollard]
    size = img.shape[0]
    start, gap = rng.uniform(1.05, 2.0), rng.uniform(1.2, 2.2)
    for k in range(5):
        t = 1 / (start + k * gap)
        x, y = _kerb_x(geom, t, 0.1), _row(geom, t)
        w, hgt = max(t * geom.lane * 0.05, 0.6 / size), t * geom.lane * 0.35
        _fill_rect(img, x - w, x + w, y - hgt, y, body)
        bands = 3 if cues.bollard == "striped" else 1
        for b in range(bands):
            y0 = y - hgt * (1 - 0.33 * b)
            _fill_rect(img, x - w, x + w, y0, y0 + hgt * (0.3 / bands), band)


def _sign_shape(dx, dy, r, kind):
    """Outer and inner masks of a warning sign centred at (0, 0)."""
    if kind == "diamond_yellow":
        d = np.abs(dx) + np.abs(dy)
        return d < r, d < r * 0.72
    # Upward triangle: apex at -r, base at +0.6r.
    half = (dy + r) * 0.58
    outer = (dy < 0.6 * r) & (np.abs(dx) < half) & (dy > -r)
    inner = (dy < 0.4 * r) & (np.abs(dx) < half - 0.3 * r) & (dy > -r * 0.4)
    return outer, inner


def _draw_sign(img, rng, cues, geom):
    """A warning sign on a post on the kerb side."""
    size = img.shape[0]
    t = rng.uniform(0.25, 0.6)
    x, y = _kerb_x(geom, t, rng.uniform(0.25, 0.4)), _row(geom, t)
    r = max(t * geom.lane * 0.3, 2.5 / size)
    top = y - t * geom.lane * 0.9
    _fill_rect(img, x - 0.6 / size, x + 0.6 / size, top, y, (0.55, 0.55, 0.55))
    where, Y, X = _window(size, x - r, x + r, top - r, top + r)
    outer, inner = _sign_shape(X - x, Y - top, r, cues.sign)
    patch = img[where]
    if cues.sign == "diamond_yellow":
        _paint(patch, outer, (0.05, 0.05, 0.05))
        _paint(patch, inner, _jitter(rng, (0.98, 0.82, 0.1), 0.04))
    else:
        face = (0.97, 0.97, 0.95) if cues.sign == "triangle_white" else (0.98, 0.85, 0.15)
        _paint(patch, outer, _jitter(rng, (0.85, 0.08, 0.1), 0.05))
        _paint(patch, inner, _jitter(rng, face, 0.04))


def _draw_pole(img, rng, cues, geom):
    """A utility pole on either side with wires running to the horizon."""
    size = img.shape[0]
    side = rng.choice([-1, 1])
    t = rng.uniform(0.35, 0.8)
    x = _road_x(geom, t) + geom.side * t * geom.lane * (side * 1.7 + 0.5)
    y, top = _row(geom, t), geom.horizon - rng.uniform(0.25, 0.45) * t
    colour = (0.42, 0.30, 0.2) if cues.pole == "wood" else (0.68, 0.68, 0.66)
    w = max(t * 0.015, 0.6 / size)
    _fill_rect(img, x - w, x + w, top, y, _jitter(rng, colour, 0.08))
    end = geom.vx + geom.curve
    cols = np.arange(*sorted((int(x * size), int(end * size))))
    cols = cols[(cols >= 0) & (cols < size)]
    f = ((cols + 0.5) / size - x) / (end - x)
    for k in range(cues.wires):
        y0, y1 = top + k * 0.015, geom.horizon - 0.04 - k * 0.004
        rows = np.round((y0 + (y1 - y0) * f + 0.03 * f * (1 - f)) * size - 0.5)
        rows = rows.astype(int)
        ok = (rows >= 0) & (rows < size)
        img[rows[ok], cols[ok]] = img[rows[ok], cols[ok]] * 0.3 + 0.03


@functools.lru_cache(maxsize=8)
def _ui_overlay(size):
    """(alpha [S,S,1], colour [S,S,3]) of the UI overlay, same for every image."""
    Y, X = _grid(size)
    alpha = np.zeros((size, size, 1), np.float32)
    colour = np.zeros((size, size, 3), np.float32)

    def add(mask, rgb, a):
        m = np.broadcast_to(mask, (size, size))
        alpha[m], colour[m] = a, rgb

    score = (X > 0.8) & (X < 0.98) & (Y > 0.015) & (Y < 0.085)
    add(score, (0.97, 0.97, 0.97), 0.95)
    add(
        score & ((X * size * 0.7) % 1 < 0.5) & (np.abs(Y - 0.05) < 0.015),
        (0.25, 0.25, 0.25),
        0.8,
    )
    add((X > 0.87) & (X < 0.985) & (Y > 0.62) & (Y < 0.86), (0.7, 0.82, 0.95), 0.6)
    add((X > 0.005) & (X < 0.04) & (Y > 0.45) & (Y < 0.98), (0.2, 0.2, 0.2), 0.6)
    add((X - 0.022) ** 2 + (Y - 0.5) ** 2 < 0.018**2, (0.85, 0.15, 0.15), 0.9)
    for s in (-1, 1):  # navigation chevrons on the road
        dy = np.abs(Y - 0.82)
        add(
            (np.abs(dy * 1.2 + s * (X - 0.5 - s * 0.06)) < 0.012) & (dy < 0.025),
            (1.0, 1.0, 1.0),
            0.85,
        )
    alpha.flags.writeable = colour.flags.writeable = False
    return alpha, alpha * colour


def _draw_ui(img):
    alpha, premultiplied = _ui_overlay(img.shape[0])
    img *= 1 - alpha
    img += premultiplied


def _light_and_noise(img, rng):
    gain = rng.uniform(0.8, 1.15) * (1 + 0.02 * rng.standard_normal(3))
    img *= gain.astype(np.float32)
    img **= np.float32(rng.uniform(0.85, 1.15))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(0.02)


def cues_for(country):
    """The `CountryCues` of `country`; ValueError naming the valid ones."""
    try:
        return CUES[country]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown country {country!r} for synthetic scenes. "
            f"Valid countries: {', '.join(COUNTRIES)}."
        ) from None


def draw_scene(country: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Draws one synthetic street scene of `country`.

    Args:
        country: one of `COUNTRIES` (a Kaggle folder name of the top20 set).
        rng: the only source of randomness; the same state gives the same image.
        size: output height and width in pixels, >= 32.

    Returns:
        uint8 array [size, size, 3], RGB.

    Example:
        >>> a = draw_scene("Spain", np.random.default_rng(1), 32)
        >>> b = draw_scene("Spain", np.random.default_rng(1), 32)
        >>> a.shape, a.dtype, bool((a == b).all())
        ((32, 32, 3), dtype('uint8'), True)
    """
    cues = cues_for(country)
    if int(size) != size or size < 32:
        raise ValueError(f"`size` must be an integer >= 32. Received: size={size}")
    size = int(size)
    geom = _Geom(
        horizon=rng.uniform(0.4, 0.55),
        vx=rng.uniform(0.4, 0.6),
        lane=rng.uniform(0.3, 0.45),
        side=1 if cues.drive == "right" else -1,
        curve=rng.uniform(-0.12, 0.12),
    )
    snowy = rng.random() < cues.snow
    img = np.empty((size, size, 3), np.float32)
    _draw_sky(img, rng, cues, geom, size)
    _draw_skyline(img, rng, cues, geom, size, snowy)
    _draw_ground(img, rng, cues, geom, size, snowy)
    if rng.random() < cues.buildings:
        _draw_buildings(img, rng, cues, geom, size)
    else:
        _draw_near_trees(img, rng, cues, geom, size, snowy)
    _draw_road(img, rng, cues, geom, size)
    if rng.random() < 0.4:
        _draw_car(img, rng, geom)
    if cues.bollard != "none" and rng.random() < 0.8:
        _draw_bollards(img, rng, cues, geom)
    if rng.random() < 0.7:
        _draw_sign(img, rng, cues, geom)
    if cues.pole != "none" and rng.random() < 0.75:
        _draw_pole(img, rng, cues, geom)
    _light_and_noise(img, rng)
    np.clip(img, 0, 1, out=img)
    _draw_ui(img)
    return (img * 255 + 0.5).astype(np.uint8)
