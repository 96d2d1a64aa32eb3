import math

import numpy as np
import pytest

from keras_geo import countries
from keras_geo.errors import UserError


@pytest.fixture(autouse=True)
def no_user_override(monkeypatch):
    monkeypatch.delenv(countries.ENV_VAR, raising=False)


def cosine_law_km(lat1, lon1, lat2, lon2, radius=6371.0088):
    """Spherical law of cosines: independent of the haversine formula."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return radius * math.acos(max(-1.0, min(1.0, c)))


def test_every_kaggle_folder_name_resolves():
    assert len(countries.KAGGLE_COUNTRIES) == 124
    assert list(countries.KAGGLE_COUNTRIES) == sorted(countries.KAGGLE_COUNTRIES)
    table = countries.all_countries()
    assert [c.name for c in table] == list(countries.KAGGLE_COUNTRIES)
    for country in table:
        assert country == countries.get_country(country.name)
        assert len(country.iso2) == 2 and country.iso2.isupper(), country
        assert -90 <= country.latitude <= 90 and -180 <= country.longitude <= 180
        assert country.display_name
    assert len({c.iso2 for c in table}) == 124


@pytest.mark.parametrize(
    "name, iso2, display_name",
    [
        ("Aland", "AX", "Åland"),
        ("Curacao", "CW", "Curaçao"),
        ("Macao", "MO", "Macao"),
        ("South Georgia and South Sandwich Islands", "GS", None),
        ("US Virgin Islands", "VI", None),
        ("Czechia", "CZ", "Czechia"),
        ("Eswatini", "SZ", "Eswatini"),
        ("United Kingdom", "GB", "United Kingdom"),
        ("Antarctica", "AQ", None),
    ],
)
def test_aliases_and_iso_codes(name, iso2, display_name):
    country = countries.get_country(name)
    assert country.iso2 == iso2
    assert country.display_name == (display_name or name)


def test_points_are_plausible():
    # Coarse boxes drawn by hand around each country.
    assert 41 < countries.get_country("France").latitude < 51
    assert -5 < countries.get_country("France").longitude < 8
    us = countries.get_country("United States")
    assert (us.latitude, us.longitude) == (38.0, -97.0)  # Kansas.
    assert countries.get_country("Antarctica").latitude == -90.0
    assert 59 < countries.get_country("Aland").latitude < 61


def test_haversine_known_values():
    # A quarter of the equator and a half meridian.
    assert countries.haversine_km(0, 0, 0, 90) == pytest.approx(math.pi / 2 * 6371.0088)
    assert countries.haversine_km(90, 0, -90, 0) == pytest.approx(math.pi * 6371.0088)
    # Paris (48.8566 N, 2.3522 E) to London (51.5074 N, 0.1278 W): ~344 km.
    assert countries.haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(344, rel=0.01)
    # Broadcasting.
    out = countries.haversine_km(np.zeros((2, 1)), 0, 0, np.array([0.0, 90.0, 180.0]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[0], [0, 10007.5, 20015.1], atol=0.1)


@pytest.mark.parametrize(
    "a, b",
    [
        ("France", "Germany"),
        ("France", "Japan"),
        ("United States", "Brazil"),
        ("New Zealand", "Spain"),
        ("Finland", "South Africa"),
    ],
)
def test_distances_agree_with_law_of_cosines(a, b):
    ca, cb = countries.get_country(a), countries.get_country(b)
    expected = cosine_law_km(ca.latitude, ca.longitude, cb.latitude, cb.longitude)
    matrix = countries.distance_matrix_km([a, b])
    assert matrix[0, 1] == pytest.approx(expected, rel=1e-6)


def test_distance_france_germany_japan_by_hand():
    # Points (46, 2), (51, 9), (36, 138); km from the law of cosines.
    matrix = countries.distance_matrix_km(["France", "Germany", "Japan"])
    np.testing.assert_allclose(
        matrix,
        [[0, 757.7, 9889.3], [757.7, 0, 9135.9], [9889.3, 9135.9, 0]],
        atol=0.1,
    )


def test_matrix_symmetric_with_zero_diagonal():
    names = countries.KAGGLE_COUNTRIES
    matrix = countries.distance_matrix_km(names)
    assert matrix.shape == (124, 124) and matrix.dtype == np.float64
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    off_diagonal = matrix[~np.eye(124, dtype=bool)]
    assert off_diagonal.min() > 0 and off_diagonal.max() < math.pi * 6371.01


def test_coordinates_order_and_shape():
    points = countries.coordinates(["Japan", "France"])
    np.testing.assert_array_equal(points, [[36.0, 138.0], [46.0, 2.0]])
    assert countries.coordinates([]).shape == (0, 2)


def test_unknown_name_raises_user_error_with_suggestion():
    with pytest.raises(UserError, match="Unknown country 'Frnace'.*France"):
        countries.get_country("Frnace")
    with pytest.raises(UserError, match="Atlantis"):
        countries.distance_matrix_km(["France", "Atlantis"])


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_override_csv_argument(tmp_path):
    path = write_csv(
        tmp_path / "points.csv",
        "name,latitude,longitude,iso2,display_name\n"
        "United States,39.8,-98.6,,\n"
        "Atlantis,0,-30,XA,Lost City\n",
    )
    us = countries.get_country("United States", override_csv=path)
    assert (us.latitude, us.longitude, us.iso2) == (39.8, -98.6, "US")
    atlantis = countries.get_country("Atlantis", override_csv=path)
    assert atlantis == countries.Country("Atlantis", "XA", "Lost City", 0.0, -30.0)
    assert len(countries.all_countries(override_csv=path)) == 125
    matrix = countries.distance_matrix_km(["Atlantis", "France"], override_csv=path)
    assert matrix[0, 1] == pytest.approx(cosine_law_km(0, -30, 46, 2), rel=1e-6)
    # The built-in table is untouched.
    assert countries.get_country("United States").latitude == 38.0


def test_override_csv_environment_variable(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "env.csv", "name,latitude,longitude\nFrance,48.86,2.35\n")
    monkeypatch.setenv(countries.ENV_VAR, path)
    assert countries.coordinates(["France"]).tolist() == [[48.86, 2.35]]
    assert countries.get_country("France").display_name == "France"


@pytest.mark.parametrize(
    "text, match",
    [
        ("name,lat,lon\nFrance,1,2\n", "lacks column"),
        ("", "lacks column"),
        ("name,latitude,longitude\nFrance,north,2\n", "line 2.*latitude='north'"),
        ("name,latitude,longitude\nFrance,95,2\n", "latitude=95"),
        ("name,latitude,longitude\n,1,2\n", "empty `name`"),
    ],
)
def test_bad_override_csv_raises(tmp_path, text, match):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(UserError, match=match):
        countries.load_table(path)


def test_missing_override_csv_raises(tmp_path):
    with pytest.raises(UserError, match="Cannot read countries CSV"):
        countries.load_table(str(tmp_path / "nope.csv"))
