"""Tests of the synthetic street scenes (numpy only, fast)."""

import numpy as np
import pytest

from tfds_geoguessr.geoguessr import synthetic

TOP20 = (
    "Argentina",
    "Australia",
    "Brazil",
    "Canada",
    "Finland",
    "France",
    "Germany",
    "Italy",
    "Japan",
    "Mexico",
    "Norway",
    "Poland",
    "Russia",
    "Singapore",
    "South Africa",
    "Spain",
    "Sweden",
    "Thailand",
    "United Kingdom",
    "United States",
)


def _features(img):
    """Mean colour of an 8x8 grid of cells: 192 hand-crafted features."""
    k = img.shape[0] // 8
    return img[: 8 * k, : 8 * k].reshape(8, k, 8, k, 3).mean((1, 3)).ravel() / 255


@pytest.fixture(scope="module")
def held_out_features():
    """Features of 20 train and 10 held-out draws per country, at 32 px."""
    rng = np.random.default_rng(0)
    feats = np.array(
        [
            [_features(synthetic.draw_scene(c, rng, 32)) for _ in range(30)]
            for c in synthetic.COUNTRIES
        ]
    )
    return feats[:, :20], feats[:, 20:]


def _balanced_accuracy(train, test, labels):
    """Nearest-centroid classifier on standardised features: mean recall."""
    flat = train.reshape(-1, train.shape[-1])
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    classes = np.unique(labels)
    centroids = np.stack(
        [((train[labels == k] - mu) / sd).reshape(-1, mu.size).mean(0) for k in classes]
    )
    dist = ((((test - mu) / sd)[:, :, None, :] - centroids) ** 2).sum(-1)
    correct = classes[dist.argmin(-1)] == labels[:, None]
    return np.mean([correct[labels == k].mean() for k in classes])


def test_countries_are_top20_sorted():
    assert synthetic.COUNTRIES == TOP20
    assert set(synthetic.CUES) == set(TOP20)


@pytest.mark.parametrize("size", [32, 64, 100, 224])
def test_shape_and_dtype(size):
    img = synthetic.draw_scene("Japan", np.random.default_rng(0), size)
    assert img.shape == (size, size, 3)
    assert img.dtype == np.uint8


def test_every_country_draws():
    rng = np.random.default_rng(1)
    for country in synthetic.COUNTRIES:
        img = synthetic.draw_scene(country, rng, 32)
        assert img.shape == (32, 32, 3)
        assert img.std() > 10  # not a flat image


def test_deterministic_given_rng_state():
    a = synthetic.draw_scene("Brazil", np.random.default_rng(42), 64)
    b = synthetic.draw_scene("Brazil", np.random.default_rng(42), 64)
    np.testing.assert_array_equal(a, b)


def test_variety_within_country():
    rng = np.random.default_rng(3)
    imgs = [synthetic.draw_scene("Norway", rng, 32).astype(float) for _ in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(imgs[i] - imgs[j]).mean() > 5


def test_countries_separable_by_nearest_centroid(held_out_features):
    labels = np.array(synthetic.COUNTRIES)
    accuracy = _balanced_accuracy(*held_out_features, labels)
    assert accuracy > 3 / len(labels), accuracy  # > 3x chance


def test_driving_side_and_climate_carry_signal(held_out_features):
    drive = np.array([synthetic.CUES[c].drive for c in synthetic.COUNTRIES])
    assert _balanced_accuracy(*held_out_features, drive) > 0.7
    climate = np.array([synthetic.CUES[c].climate for c in synthetic.COUNTRIES])
    assert _balanced_accuracy(*held_out_features, climate) > 3 / len(set(climate))


def test_left_hand_traffic_countries():
    left = {c for c, cues in synthetic.CUES.items() if cues.drive == "left"}
    assert left == {
        "Australia",
        "Japan",
        "Singapore",
        "South Africa",
        "Thailand",
        "United Kingdom",
    }


def test_unknown_country_names_valid_ones():
    with pytest.raises(ValueError, match="Atlantis.*Argentina.*United States"):
        synthetic.draw_scene("Atlantis", np.random.default_rng(0))


@pytest.mark.parametrize("size", [16, 31, 32.5])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        synthetic.draw_scene("Spain", np.random.default_rng(0), size)
