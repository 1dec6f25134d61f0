# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Look at an HTML page in a real browser: headless Chromium (the Debian package) renders it to a PNG, or gives the
DOM it built; a small PNG reader tells a picture from a blank page."""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-extensions", "--mute-audio"]


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed (make deps installs the Debian package)"
    return found


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 900) -> Path:
    """The page as the browser draws it in a ``width`` x ``height`` window."""
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--screenshot={png}",
                          page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and png.is_file(), run.stderr
    return png


def dom(page: Path) -> str:
    """The document as the browser parsed it (``--dump-dom``)."""
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _paeth(left: int, up: int, corner: int) -> int:
    guess = left + up - corner
    to_left, to_up, to_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
    if to_left <= to_up and to_left <= to_corner:
        return left
    return up if to_up <= to_corner else corner


def png_pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    width, height, depth, colour, _compression, _filter, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    pixel = 4 if colour == 6 else 3
    raw = zlib.decompress(compressed)
    stride = width * pixel
    rows, previous = [], bytearray(stride)
    for index in range(height):
        kind = raw[index * (stride + 1)]
        line = bytearray(raw[index * (stride + 1) + 1:(index + 1) * (stride + 1)])
        for at in range(stride):
            left = line[at - pixel] if at >= pixel else 0
            corner = previous[at - pixel] if at >= pixel else 0
            if kind == 1:
                line[at] = (line[at] + left) & 0xFF
            elif kind == 2:
                line[at] = (line[at] + previous[at]) & 0xFF
            elif kind == 3:
                line[at] = (line[at] + (left + previous[at]) // 2) & 0xFF
            elif kind == 4:
                line[at] = (line[at] + _paeth(left, previous[at], corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def colours(png: Path) -> dict[bytes, int]:
    """How many pixels of each colour (RGB)."""
    width, _height, rows = png_pixels(png)
    pixel = len(rows[0]) // width
    counted: dict[bytes, int] = {}
    for row in rows:
        for at in range(0, len(row), pixel):
            key = row[at:at + 3]
            counted[key] = counted.get(key, 0) + 1
    return counted
