"""Small files that decode to a lot, and the probes that measure what they cost.

The memory cases of `benchmarks/memory.py` and of the reliability tests
(`tests/test_memory_budget.py`) are made and run with these. Each maker
writes bytes directly: no huge image is ever held in memory here.
"""

import io
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib

from PIL import Image


def png(width, height):
    """A grey PNG of `width` x `height` zeros (a 20000x20000 one is about 400 KB)."""
    row = b"\0" * (width + 1)  # Filter byte, then one byte per pixel.
    packer = zlib.compressobj(9)
    rows_per_chunk = max(1, 2**22 // len(row))
    idat = []
    for start in range(0, height, rows_per_chunk):
        idat.append(packer.compress(row * min(rows_per_chunk, height - start)))
    idat.append(packer.flush())

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(idat))
        + (chunk(b"IEND", b""))
    )


def gif(width, height, frames, *, first_frame=None):
    """A GIF of `frames` identical frames of `width` x `height` (the same block repeated).

    Args:
        first_frame: `(width, height)` the first frame's descriptor declares
            instead (a frame larger than the screen); its data stays the same.
    """
    buffer = io.BytesIO()
    image = Image.new("P", (width, height), 1)
    image.putpalette([0, 0, 0, 255, 255, 255] * 128)
    image.save(buffer, format="GIF")
    data = buffer.getvalue()
    start = gif_first_block(data)
    block = data[start:-1]  # Extensions and the image, without the trailer.
    image_at = block.index(b"\x2c")
    if first_frame is not None:
        first = bytearray(block)
        first[image_at + 5 : image_at + 9] = struct.pack("<HH", *first_frame)
        return data[:start] + bytes(first) + block * (frames - 1) + b";"
    return data[:start] + block * frames + b";"


def gif_first_block(data):
    """Where a GIF's blocks start: after the header and the global colour table."""
    packed = data[10]
    return 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)


def add_zero_members(path, members, prefix=b""):
    """Adds zero-filled members to the zip at `path` (created if missing); each compresses ~1000x.

    Args:
        members: `{name: size in bytes}`.
        prefix: the first bytes of each member (e.g. a JPEG marker), then zeros.
    """
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        for name, size in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(prefix)
                block = bytes(2**20)
                for start in range(len(prefix), size, len(block)):
                    member.write(block[: min(len(block), size - start)])
    return path


def cap_data(cap_bytes):
    """A `preexec_fn` capping a child's data segment at `cap_bytes` (RLIMIT_DATA).

    RLIMIT_DATA counts the heap and private writable mappings (Linux >= 4.7),
    where decoders allocate; unlike RLIMIT_AS it leaves TensorFlow's large
    address-space reservations alone. A process over it meets allocation
    failures (MemoryError, a ResourceExhaustedError, a crash) instead of the
    machine's out-of-memory killer: a regression cannot take the machine.
    """
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (cap_bytes, cap_bytes))


def run_measured(argv, *, env=None, cap_bytes=None, stdin=None, timeout=600):
    """Runs `python -m keras_geo.cli.main ARGV`; returns its exit code, peak RSS and output.

    Returns:
        `(exit_code, peak_rss_mb, stdout, stderr)`; the peak is the child's own
        `ru_maxrss` (from `os.wait4`), not the sum of all children.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_geo.cli.main", *argv],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=cap_data(cap_bytes) if cap_bytes else None,
    )
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        out, err = process.stdout.read(), process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, out.decode(), err.decode()


class ServedApp:
    """`keras-geo app` in its own process, with its memory readable and resettable.

    `peak_mb()` is the process's peak RSS (`VmHWM`); `reset_peak()` sets it
    back to the current RSS (`/proc/PID/clear_refs`, Linux, needs to own the
    process), so the peak of one request can be read alone. `cap_above_mb`
    caps its data segment (RLIMIT_DATA, see `cap_data`) at that much above
    what it holds once started.
    """

    def __init__(self, model, *, env=None, cap_above_mb=None, extra=()):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        argv = ["app", "--model", str(model), "--port", str(self.port), *extra]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keras_geo.cli.main", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._wait_until_up()
        self.cap_mb = None
        if cap_above_mb:  # Set after start-up: the cap is on what requests add.
            self.cap_mb = self.status("VmData") + cap_above_mb
            cap = int(self.cap_mb * 2**20)
            resource.prlimit(self.process.pid, resource.RLIMIT_DATA, (cap, cap))

    def _wait_until_up(self, timeout=180):
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited: {self.process.communicate()[1][-2000:]}")
            try:
                httpx.get(self.url + "/api/health", timeout=5, trust_env=False)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.5)

    def status(self, field):
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(line for line in f if line.startswith(field + ":"))
        return int(line.split()[1]) / 1024

    def peak_mb(self):
        return self.status("VmHWM")

    def rss_mb(self):
        return self.status("VmRSS")

    def reset_peak(self):
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as f:
            f.write("5")

    def stop(self, sig=signal.SIGINT, timeout=60):
        """Stops it with `sig`; returns `(exit_code, stdout, stderr)`."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, out, err


def ask_page(url, path, *, timeout=300):
    """Drops a file on the app's page as the browser does; returns `(success, output or error)`.

    Speaks the Gradio protocol the page itself uses: upload the file
    (`/gradio_api/upload`), join the queue for the screenshot's change event
    (`/gradio_api/queue/join`), read the result from the event stream
    (`/gradio_api/queue/data`). The error is the text the page would show.
    """
    import json
    import pathlib
    import uuid

    import httpx

    path = pathlib.Path(path)
    session = uuid.uuid4().hex
    with httpx.Client(base_url=url, trust_env=False, timeout=timeout) as http:
        config = http.get("/config").json()
        screenshot = next(
            c["id"]
            for c in config["components"]
            if c.get("props", {}).get("elem_id") == "screenshot"
        )
        fn_index = next(
            i
            for i, dependency in enumerate(config["dependencies"])
            if [screenshot, "change"] in [list(t) for t in dependency["targets"]]
        )
        uploaded = http.post("/gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        if uploaded.status_code != 200:
            return False, uploaded.text
        file_data = {
            "path": uploaded.json()[0],
            "orig_name": path.name,
            "size": path.stat().st_size,
            "meta": {"_type": "gradio.FileData"},
        }
        joined = http.post(
            "/gradio_api/queue/join",
            json={
                "data": [file_data],
                "event_data": None,
                "fn_index": fn_index,
                "trigger_id": screenshot,
                "session_hash": session,
            },
        )
        joined.raise_for_status()
        with http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": session}
        ) as events:
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    if message.get("success"):
                        return True, output.get("data")
                    return False, output.get("error") or output
    return False, "no answer"


def chunked_upload(url, path, total_mb, boundary="kerasgeo"):
    """Streams a multipart body of zeros without Content-Length to `url` + `path`.

    Stops sending as soon as the server answers (or closes the connection).

    Returns:
        `(status line of the answer, MB sent)`.
    """
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    )
    field = "image" if "api" in path else "files"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(head.encode())
        chunk = bytes(2**16)
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            while sent < total_mb * 2**20:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break  # The server answered before the body ended.
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(60)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    return answer.split(b"\r\n")[0].decode(), sent / 2**20
