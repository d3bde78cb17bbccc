"""The demo's logo for Cloud Lite's storefront (R27: Standard brings branding): a small PNG
drawn with the standard library alone (``zlib`` and ``struct``), no image package and no text
rendering. 160×48 pixels in Cloud Lite's brand colour: rising white bars (a chart), three white
strokes beside them and a line in its accent colour under all; a few hundred bytes."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT = 160, 48
#: Cloud Lite's colours (``local.demo.LITE_COLORS``)
BRAND = "#0b5d3b"
ACCENT = "#7a2e0e"
WHITE = "#ffffff"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Pixel = tuple[int, int, int]


def rgb(color: str) -> Pixel:
    """``#rrggbb`` as a pixel."""
    value = color.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {color!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(rows: Sequence[Sequence[Pixel]]) -> bytes:
    """An 8-bit RGB PNG of ``rows`` (each a row of pixels, all of one width), unfiltered."""
    height = len(rows)
    width = len(rows[0]) if rows else 0
    if not width or any(len(row) != width for row in rows):
        raise ValueError("a PNG needs rows of pixels, all of one width")
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def demo_logo(
    width: int = WIDTH, height: int = HEIGHT, brand: str = BRAND, accent: str = ACCENT
) -> bytes:
    """Cloud Lite's logo: the brand colour, five rising white bars, three white strokes beside
    them, an accent line under all."""
    background, bar, line = rgb(brand), rgb(WHITE), rgb(accent)
    rows = [[background] * width for _ in range(height)]

    def fill(x0: int, y0: int, x1: int, y1: int, pixel: Pixel) -> None:
        for y in range(max(0, y0), min(height, y1)):
            for x in range(max(0, x0), min(width, x1)):
                rows[y][x] = pixel

    margin = height // 6
    base = height - margin - 4  # the bars stand on the accent line
    bar_width, gap = max(2, width // 20), max(1, width // 40)
    for n in range(5):
        x = margin + n * (bar_width + gap)
        top = base - (base - margin) * (n + 1) // 5
        fill(x, top, x + bar_width, base, bar)
    fill(margin, base + 1, width - margin, base + 4, line)
    # beside them, three white strokes of a "wordmark" (no text is rendered)
    left = margin + 5 * (bar_width + gap) + gap * 3
    span = width - margin - left
    stroke = max(2, (base - margin) // 7)
    for n, share in enumerate((1.0, 0.7, 0.45)):
        y = margin + n * stroke * 2 + stroke // 2
        fill(left, y, left + int(span * share), y + stroke, bar)
    return encode_png(rows)
