"""keras-geo: name the country of a GeoGuessr street-view screenshot."""

__version__ = "0.1.0"
