"""Small files that decode to a lot, made in a blink: the memory tests' inputs.

Not a test module: the reliability tests and `benchmarks/memory.py` import it.
Each maker writes bytes directly (no huge image is ever held in memory here).
"""

import io
import resource
import struct
import subprocess
import sys
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


def zip_of_zeros(path, members):
    """A zip of zero-filled members: `members` is `{name: size}`; each compresses ~1000x."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, size in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                block = b"\0" * 2**20
                for start in range(0, size, len(block)):
                    member.write(block[: min(len(block), size - start)])
    return path


def run_capped(code, *, cap_bytes, env=None, timeout=300):
    """Runs `python -c code` with its data segment capped at `cap_bytes` (RLIMIT_DATA).

    RLIMIT_DATA counts the heap and private anonymous mappings (Linux >= 4.7),
    where decoders allocate; unlike RLIMIT_AS it leaves TensorFlow's large
    address-space reservations alone. A process over the cap gets allocation
    failures (MemoryError, or a crash in C++), as it would meet the OOM killer.

    Returns:
        The `subprocess.CompletedProcess` (text output captured).
    """

    def cap():
        resource.setrlimit(resource.RLIMIT_DATA, (cap_bytes, cap_bytes))

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=cap,
        check=False,
    )
