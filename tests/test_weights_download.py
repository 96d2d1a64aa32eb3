"""The ImageNet weights download: `keras.utils.get_file` with keras.applications' hashes.

The hashes are read from Keras's own source (the version installed), and the
download is served from 127.0.0.1: no test touches the network or `~/.keras`.
"""

import dataclasses
import functools
import hashlib
import http.server
import inspect
import re
import threading

import keras
import pytest

from keras_geo import backbones
from keras_geo import model as geo_model
from keras_geo.errors import UserError


def _applications_module(spec):
    import importlib

    return importlib.import_module(getattr(keras.applications, spec.constructor).__module__)


def keras_notop_hash(spec):
    """The hash keras.applications passes to `get_file` for `spec`'s no-top weights."""
    module = _applications_module(spec)
    table = getattr(module, "WEIGHTS_HASHES", None)
    if table is None:  # VGG16 writes its hashes inline in the `get_file` calls.
        source = inspect.getsource(module)
        call = re.search(
            re.escape(spec.weights_file) + r'",\s*\w+,\s*cache_subdir="models",\s*'
            r'file_hash="([0-9a-f]+)"',
            source,
        )
        return call.group(1)
    # Keys as keras.applications spells them: "resnet50", "b0" and "-s", "convnext_tiny".
    stem = re.sub(r"(_weights_tf_dim_ordering_tf_kernels)?_notop\.h5$", "", spec.weights_file)
    key = next(k for k in table if stem in (k, f"efficientnetv2{k}", f"efficientnetv2-{k}"))
    return table[key][1]  # (with top, no top)


@pytest.mark.parametrize("name", backbones.NAMES)
def test_every_backbone_carries_keras_applications_own_hash(name):
    spec = backbones.get(name)
    assert spec.weights_hash == keras_notop_hash(spec)


@pytest.mark.parametrize("name", backbones.NAMES)
def test_the_download_is_checked_against_that_hash(name, monkeypatch):
    calls = []
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: calls.append((a, k)) or "w.h5")
    spec = backbones.get(name)
    assert geo_model.resolve_weights("imagenet", spec) == "w.h5"
    (args, kwargs), *_ = calls
    assert args == (spec.weights_file, spec.weights_url)
    assert kwargs["file_hash"] == spec.weights_hash


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """Serves `tmp_path/served/` on 127.0.0.1 as the weights root; counts requests.

    `get_file` keeps its real code but caches under `tmp_path/cache`.
    """
    served = tmp_path / "served"
    (served / "resnet").mkdir(parents=True)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(backbones, "WEIGHTS_ROOT", f"http://127.0.0.1:{server.server_port}/")
    real_get_file = keras.utils.get_file
    cache = tmp_path / "cache"
    cache.mkdir()  # get_file falls back to /tmp/.keras for a cache_dir it cannot write.
    monkeypatch.setattr(
        keras.utils,
        "get_file",
        lambda *a, **k: real_get_file(*a, **{**k, "cache_dir": str(cache)}),
    )
    yield served, hits, cache
    server.shutdown()
    thread.join()


def test_a_corrupt_download_is_a_one_line_error_and_is_not_used(weights_server):
    served, hits, cache = weights_server
    spec = backbones.get("resnet50")
    (served / "resnet" / spec.weights_file).write_bytes(b"not the weights" * 100)
    for attempt in (1, 2):
        with pytest.raises(UserError) as error:
            geo_model.resolve_weights("imagenet", spec)
        message = str(error.value)
        assert "\n" not in message
        assert "do not match keras.applications' hash " + spec.weights_hash in message
        assert "not used" in message
        # The bad copy in the cache is never taken as the weights: every attempt downloads.
        assert len(hits) == attempt
    assert (cache / "models" / spec.weights_file).is_file()


def test_a_download_with_the_right_hash_is_used(weights_server):
    served, hits, cache = weights_server
    data = b"weights stand-in"
    spec = dataclasses.replace(
        backbones.get("resnet50"), weights_hash=hashlib.md5(data).hexdigest()
    )
    (served / "resnet" / spec.weights_file).write_bytes(data)
    path = geo_model.resolve_weights("imagenet", spec)
    assert path == str(cache / "models" / spec.weights_file)
    assert geo_model.resolve_weights("imagenet", spec) == path
    assert len(hits) == 1  # The second call found the checked copy in the cache.
