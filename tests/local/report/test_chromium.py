"""The report opened in a real headless browser (Debian's chromium): chart and verdict render."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from chaos.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],  # type: ignore[list-item]
                          capture_output=True, timeout=90, check=True)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Rows of RGB(A) bytes of an 8-bit, non-interlaced PNG (what chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def count_near(rows: list[bytes], bpp: int, rgb: tuple[int, int, int], tol: int = 12) -> int:
    n = 0
    for row in rows:
        for i in range(0, len(row), bpp):
            if all(abs(row[i + k] - rgb[k]) <= tol for k in range(3)):
                n += 1
    return n


def test_report_chart_and_verdict_render_in_chromium(tmp_path: Path) -> None:
    ts = [round(0.25 * i, 2) for i in range(80)]
    journal = {
        "format": 1, "run_id": "20260101-000000-abcdef", "seed": 3, "file": "experiments/edge-loss.yaml",
        "experiment": {"title": "Edge loss in a browser", "stack": "audio-room"}, "backend": "local",
        "verdict": "deviated", "reason": "1 assertion failed", "duration_s": 20.0, "image_ids": {},
        "series": {"crowd.connected": [[t, 60 if t < 6 or t > 12 else 5] for t in ts],
                   "crowd.join_latency_p95": [[t, 0.1 + 0.01 * (t % 3)] for t in ts],
                   "crowd.frame_gap_p99": [[t, 0.05] for t in ts],
                   "room.relaunches{room=launch}": [[t, 0 if t < 8 else 1] for t in ts]},
        "faults": [{"step": "kill-edge", "fault": "kill", "hit": ["edge-1"], "injected_t": 6.0, "rolled_back_t": 19.0}],
        "assertions": [{"check": "listeners-back", "phase": "recovery", "probe": "crowd.connected", "expect": ">= 55",
                        "mode": "within", "ok": False, "message": "not met", "observed": [[11.0, 5]]}],
        "events": [{"kind": "verdict_reached", "t": 20.0, "verdict": "deviated", "reason": "1 assertion failed"}],
    }
    source = tmp_path / "run.json"
    source.write_text(json.dumps(journal))
    report = write_report(source)

    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout.decode()
    assert 'id="verdict"' in dom and ">DEVIATED<" in dom
    assert dom.count("<polyline") >= 3 and 'class="relaunch"' in dom and 'class="fault-window"' in dom

    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1000,760", f"--screenshot={shot}", report.as_uri())
    _, bpp, rows = png_pixels(shot)
    assert count_near(rows, bpp, (0xB3, 0x59, 0x00)) > 300  # the verdict badge, painted
    assert count_near(rows, bpp, (0x1F, 0x77, 0xB4), tol=30) > 200  # the series lines of the chart
    shade = tuple(round(0.28 * f + 0.72 * b) for f, b in zip((0xF4, 0xA5, 0x82), (0xFB, 0xFB, 0xFB)))
    assert count_near(rows, bpp, shade, tol=8) > 2000  # the shaded fault window  # type: ignore[arg-type]
