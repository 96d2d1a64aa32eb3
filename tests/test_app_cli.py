"""`keras-geo app` on the command line: one-line errors, no outbound network, clean Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from app_helpers import save_models, scene_files

from keras_geo.cli.main import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return save_models(tmp_path_factory.mktemp("cli"))[0]


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("keras-geo: error: ")
    return err


@pytest.mark.parametrize("case", ["missing", "plain_dir", "text_file"])
def test_a_model_that_is_not_one_is_one_line_exit_2(tmp_path, case, capsys):
    path = {"missing": tmp_path / "nope", "plain_dir": tmp_path, "text_file": tmp_path / "a.txt"}
    path["text_file"].write_text("hello")
    assert main(["app", "--model", str(path[case]), "--port", str(free_port())]) == 2
    err = one_error_line(capsys)
    assert len(err) == 1 and "--model" in err[0]


def test_a_port_in_use_is_one_line_exit_2_and_a_public_host_warns(run_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--model", str(run_dir), "--host", "0.0.0.0", "--port", str(port)]) == 2
    err = one_error_line(capsys)
    assert err[0].startswith("keras-geo: warning: --host 0.0.0.0 lets other machines")
    assert f"--port {port}: cannot listen on 0.0.0.0:{port}" in err[1] and len(err) == 2


@pytest.mark.parametrize("flag", ["--top-k=0", "--max-batch=0", "--max-upload-mb=0"])
def test_bad_numbers_are_one_line_exit_2(run_dir, flag, capsys):
    assert main(["app", "--model", str(run_dir), flag]) == 2
    assert flag.split("=")[0] in one_error_line(capsys)[0]


def test_without_the_app_extra_it_says_how_to_install_it(run_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails.
    assert main(["app", "--model", str(run_dir)]) == 2
    assert one_error_line(capsys) == [
        "keras-geo: error: keras-geo app needs the `app` extra (gradio is missing): "
        "pip install 'keras-geo[app]' (in a clone: pip install -e '.[app]')."
    ]


class ConnectionRecorder:
    """A TCP listener standing in for a proxy: counts every connection, serves none."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serves_with_every_outbound_call_sent_to_a_dead_proxy_and_stops_on_ctrl_c(
    run_dir, tmp_path
):
    proxy = ConnectionRecorder()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        env[name] = proxy.url
    for name in ("NO_PROXY", "no_proxy", "GRADIO_ANALYTICS_ENABLED"):
        env.pop(name, None)  # Loopback too goes to the proxy; analytics left to us.
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_geo.cli.main",
            "app",
            "--model",
            str(run_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    scene = scene_files(tmp_path, count=1)[0]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, process.communicate()[1][-2000:]
                try:
                    health = http.get("/api/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the app did not start in 120 s"
                    time.sleep(0.5)
            assert health.json()["status"] == "ok"
            page = http.get("/")
            assert page.status_code == 200 and "<html" in page.text
            assert http.get("/config").status_code == 200
            answer = http.post("/api/predict", files={"image": (scene.name, scene.read_bytes())})
            assert answer.status_code == 200 and len(answer.json()["countries"]) == 5
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert f"serving {run_dir} on http://127.0.0.1:{port}/" in out
    assert out.strip().endswith("keras-geo app: stopped.")
    assert proxy.connections == 0  # Nothing tried to reach the network.
