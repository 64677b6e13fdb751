"""The report's labels never overlap, checked in a real browser (Debian's chromium).

A crowded run (eight phases within seconds of each other and at the very
end, three faults starting together, three relaunches close together) is
rendered; a copy of the report with a measuring script is opened with
--dump-dom, so the label boxes are Chromium's own text layout, and a
screenshot shows the same page painted.
"""

from __future__ import annotations

import importlib.util
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from chaos.report import write_report

_spec = importlib.util.spec_from_file_location("report_chromium", Path(__file__).with_name("test_chromium.py"))
browser = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(browser)  # type: ignore[union-attr]

pytestmark = pytest.mark.skipif(browser.CHROMIUM is None, reason="chromium is not installed")

PHASES = [("bring_up", 0.0), ("load", 4.1), ("steady_state_before", 4.4), ("method", 4.7), ("recovery", 4.9),
          ("steady_state_after", 21.2), ("rollback", 21.5), ("teardown", 21.7)]
MEASURE = """<script>
const box = e => { const b = e.getBoundingClientRect(); return {l: b.left, t: b.top, r: b.right, b: b.bottom}; };
const labels = [...document.querySelectorAll('#timeline text.label, #timeline text.panel-title')].map(
  e => ({cls: e.getAttribute('class'), text: e.textContent, ...box(e)}));
const panels = [...document.querySelectorAll('#timeline g.panel > rect')].map(box);
const out = document.createElement('pre');
out.id = 'measured';
out.textContent = JSON.stringify({labels, panels, svg: box(document.querySelector('#timeline'))});
document.body.appendChild(out);
</script>"""


def crowded_journal() -> dict[str, Any]:
    ts = [round(0.25 * i, 2) for i in range(4, 88)]
    return {
        "format": 1, "run_id": "20260101-000000-abcdef", "seed": 3, "file": "experiments/edge-loss.yaml",
        "experiment": {"title": "Crowded labels", "stack": "audio-room"}, "backend": "local",
        "verdict": "passed", "reason": "every assertion was met", "duration_s": 22.0, "image_ids": {},
        "series": {"crowd.connected": [[t, 60 if t < 6 or t > 12 else 5] for t in ts],
                   "crowd.join_latency_p95": [[t, 0.1] for t in ts],
                   "room.relaunches{room=launch}": [[t, sum(t >= r for r in (7.0, 7.5, 8.1))] for t in ts]},
        "faults": [{"step": step, "fault": fault, "hit": hit, "injected_t": 6.0, "rolled_back_t": end}
                   for step, fault, hit, end in [("kill-edge", "kill", ["edge-1"], 19.0),
                                                 ("slow-state", "latency", ["edge->state-1"], 11.0),
                                                 ("squeeze-control", "squeeze", ["control-1"], 15.0)]],
        "assertions": [],
        "events": [{"kind": "phase_started", "t": t, "phase": p} for p, t in PHASES]
        + [{"kind": "verdict_reached", "t": 22.0, "verdict": "passed", "reason": "ok"}],
    }


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def test_labels_do_not_overlap_in_chromium(tmp_path: Path) -> None:
    source = tmp_path / "run.json"
    source.write_text(json.dumps(crowded_journal()))
    report = write_report(source)
    measured_page = tmp_path / "measured.html"
    measured_page.write_text(report.read_text().replace("</body>", MEASURE + "</body>"))

    dom = browser.chromium(tmp_path, "--window-size=1000,800", "--dump-dom", measured_page.as_uri()).stdout.decode()
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    measured = json.loads(unescape(found.group(1)))
    labels = measured["labels"]
    texts = sorted(label["text"] for label in labels)
    assert {"bring up", "steady state before", "method", "recovery", "teardown", "relaunch #3"} <= set(texts), texts
    assert sum("fault-label" in label["cls"] for label in labels) == 3
    clashes = [(a["text"], b["text"]) for i, a in enumerate(labels) for b in labels[i + 1:] if overlap(a, b)]
    assert clashes == []
    svg = measured["svg"]
    assert all(svg["l"] <= label["l"] and label["r"] <= svg["r"] for label in labels), labels
    first_panel = measured["panels"][0]
    assert all(label["b"] <= first_panel["t"] for label in labels if "phase-label" in label["cls"])

    shot = tmp_path / "labels.png"
    browser.chromium(tmp_path, "--window-size=1000,560", f"--screenshot={shot}", report.as_uri())
    _, bpp, rows = browser.png_pixels(shot)
    assert browser.count_near(rows, bpp, (0x66, 0x66, 0x66), tol=10) > 150  # the phase labels, painted
    assert browser.count_near(rows, bpp, (0x6A, 0x3D, 0x9A), tol=20) > 100  # relaunch lines and labels
