"""The fleet report's HTML page in a real headless browser (Debian's chromium).

Skipped, with the reason, where ``chromium`` is not installed (CI: ``apt-get install -y chromium``).
The tests never install anything themselves.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import svg as rep_svg
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import write as rep_write

from tests.conftest import FIXTURES, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); the page is not rendered"
)
WIDTH, HEIGHT = 1280, 2000
PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars/all/profiles.yml").read_text())["sparkfleet_profiles"]
HOSTS = ["spark-01", "spark-02", "spark-03", "station-01"]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    # --no-sandbox: CI and this machine run tests as root, where Chromium's sandbox refuses to start.
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def screenshot(page: Path, png: Path) -> None:
    proc = chromium(f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri())
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB(A) rows of an 8-bit truecolour PNG (what Chromium writes), stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line if channels == 3 else b"".join(bytes(line[i : i + 3]) for i in range(0, stride, 4))))
        prev = line
    return width, height, rows


def colour_counts(rows: list[bytes]) -> dict[tuple[int, int, int], int]:
    counts: dict[tuple[int, int, int], int] = {}
    for row in rows:
        for i in range(0, len(row), 3):
            px = (row[i], row[i + 1], row[i + 2])
            counts[px] = counts.get(px, 0) + 1
    return counts


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("fleet-report")
    expected = [{"host": h, "service": "sglang-qwen3-8b", "model_params_b": 8.2, "model_dtype": "bf16"} for h in HOSTS]
    rep_write.generate(
        inputs=[str(FIXTURES / "reports" / "fleet")],
        dest=str(dest),
        expected=expected,
        profiles=PROFILES,
        slow_margin=0.2,
        run_id="browser-test",
        generated_at="2026-11-23 10:15:00 UTC",
        latest_link=None,
        check_mode=False,
    )
    return dest / "fleet-report.html"


@pytest.fixture(scope="module")
def shot(page: Path) -> tuple[int, int, list[bytes]]:
    png = page.parent / "fleet-report.png"
    screenshot(page, png)
    assert png.stat().st_size > 30_000, f"suspiciously small screenshot: {png.stat().st_size} bytes"
    return decode_png(png.read_bytes())


def test_screenshot_has_the_window_size(shot: tuple[int, int, list[bytes]]) -> None:
    width, height, rows = shot
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(rows) == HEIGHT


def test_screenshot_is_not_blank_and_the_plots_were_drawn(shot: tuple[int, int, list[bytes]]) -> None:
    counts = colour_counts(shot[2])
    total = WIDTH * HEIGHT
    page_bg, white = hex_rgb("#f6f7f9"), (255, 255, 255)
    assert counts.get(page_bg, 0) > 0.1 * total, "the page's own background is missing: the CSS was not applied"
    assert len(counts) > 200, f"only {len(counts)} colours: the page did not render"
    ink = sum(n for c, n in counts.items() if c not in (page_bg, white))
    assert ink > 0.03 * total, f"only {ink} pixels of text, lines and plots"
    # Solid pixels of series colours exist only if the inline SVG was drawn: the markers, lines and boxes of
    # spark-02 (orange, row 2) and station-01 (pink, row 4), and the table's FAIL badge (spark-03).
    for colour in (rep_svg.PALETTE[1], rep_svg.PALETTE[3]):
        assert counts.get(hex_rgb(colour), 0) > 100, f"{colour} barely appears: the SVG plots were not drawn"
    assert counts.get(hex_rgb("#fde0dc"), 0) > 200, "the FAIL badge is missing"


def test_blank_page_control_fails_the_same_checks(tmp_path: Path) -> None:
    """The checks above can fail: an empty page gives a handful of colours."""
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><body></body></html>")
    png = tmp_path / "empty.png"
    screenshot(empty, png)
    assert len(colour_counts(decode_png(png.read_bytes())[2])) < 10


def test_browser_dom_has_one_polyline_per_host_and_the_flag(page: Path) -> None:
    proc = chromium("--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    polylines = re.findall(r"<polyline\b[^>]*>", dom)
    assert sorted(re.search(r'data-host="([^"]+)"', p).group(1) for p in polylines) == HOSTS  # type: ignore[union-attr]
    flagged = [p for p in polylines if 'data-flagged="true"' in p]
    assert len(flagged) == 1
    assert 'data-host="spark-02"' in flagged[0]
    assert dom.count('<tr class="flagged" data-flagged="true">') == 1
