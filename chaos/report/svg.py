"""The timeline chart as inline SVG: one panel per key probe, fault windows shaded, relaunches marked.

No script and no external resource: the file opens the same in a browser,
a mail attachment or a CI artifact viewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from chaos.report.data import Marker, Panel, ReportData, Strip, Window

WIDTH = 960
LEFT, RIGHT = 130, 20
PANEL_H = 130
STRIP_H = 26
GAP = 18
# Labels: rows are assigned so that no two overlap (text widths estimated
# generously: ~4.8 px per character of the 9-10 px font in Chromium, 5.6 here)
# and each is painted over a white halo, so a marker line behind it stays readable.
CHAR_W = 5.6
ROW_H = 11
HALO = 'stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")
STRIP_COLORS = ("#cfe8cf", "#fde2b8", "#f8c9c9", "#d6e4f5", "#e8d9f2", "#e0e0e0")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while True:  # up to the first tick at or above ``high``
        ticks.append(round(value, 10))
        if value >= high - step * 1e-9:
            return ticks
        value += step


def _fmt(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Placed:
    x: float  # where the text is anchored
    anchor: str  # "start" | "end"
    row: int
    text: str


def place_labels(marks: list[tuple[float, str]], left: float = 0.0, right: float = WIDTH) -> list[Placed]:
    """Rows for labels of markers at x: each label starts right of its marker (or ends left of it near
    the right edge) in the first row where it overlaps no label already placed."""
    rows: list[list[tuple[float, float]]] = []
    placed = []
    for x, text in sorted(marks, key=lambda m: m[0]):
        width = CHAR_W * len(text) + 4
        if x + 2 + width <= right or x - 2 - width < left:
            anchor, span = "start", (x + 2, x + 2 + width)
        else:
            anchor, span = "end", (x - 2 - width, x - 2)
        row = next((i for i, taken in enumerate(rows) if all(span[1] + 3 <= a or b + 3 <= span[0] for a, b in taken)),
                   len(rows))
        if row == len(rows):
            rows.append([])
        rows[row].append(span)
        placed.append(Placed(x + 2 if anchor == "start" else x - 2, anchor, row, text))
    return placed


def rows_of(placed: list[Placed]) -> int:
    return 1 + max((p.row for p in placed), default=-1)


class Axis:
    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = max(end, start + 1e-6)

    def x(self, t: float) -> float:
        span = self.end - self.start
        return LEFT + (WIDTH - LEFT - RIGHT) * (max(self.start, min(t, self.end)) - self.start) / span


def _windows(axis: Axis, windows: list[Window], top: float, height: float, labels: bool) -> list[str]:
    out = []
    for w in windows:
        x0, x1 = axis.x(w.start), axis.x(w.end)
        fill = "#f4a582" if w.ok else "#b2182b"
        out.append(f'<rect class="fault-window" x="{x0:.1f}" y="{top:.1f}" width="{max(1.5, x1 - x0):.1f}" '
                   f'height="{height:.1f}" fill="{fill}" fill-opacity="0.28"><title>{escape(w.label)}: '
                   f't={w.start:.2f}s..{w.end:.2f}s</title></rect>')
    if labels:  # stacked down from the panel's top edge
        for p in place_labels([(axis.x(w.start), w.label) for w in windows], LEFT, WIDTH - RIGHT):
            out.append(f'<text class="label fault-label" x="{p.x:.1f}" y="{top + 11 + ROW_H * p.row:.1f}" '
                       f'text-anchor="{p.anchor}" font-size="10" fill="#8c3a12" {HALO}>{escape(p.text)}</text>')
    return out


def _relaunches(axis: Axis, marks: list[Marker], top: float, height: float, labels: bool) -> list[str]:
    out = []
    for mk in marks:
        x = axis.x(mk.t)
        out.append(f'<line class="relaunch" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{top + height:.1f}" '
                   f'stroke="#6a3d9a" stroke-width="1.5" stroke-dasharray="4 3"><title>{escape(mk.label)} at t={mk.t:.2f}s</title></line>')
    if labels:  # stacked up from the panel's bottom edge
        for p in place_labels([(axis.x(mk.t), mk.label) for mk in marks], LEFT, WIDTH - RIGHT):
            out.append(f'<text class="label relaunch-label" x="{p.x:.1f}" y="{top + height - 4 - ROW_H * p.row:.1f}" '
                       f'text-anchor="{p.anchor}" font-size="10" fill="#6a3d9a" {HALO}>{escape(p.text)}</text>')
    return out


def _panel(axis: Axis, panel: Panel, top: float, data: ReportData, first: bool) -> list[str]:
    values = [v for pts in panel.series.values() for _, v in pts if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    low = min(0.0, low)
    ticks = nice_ticks(low, high if high > low else low + 1.0, 4)
    lo, hi = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1.0

    def y(v: float) -> float:
        return top + PANEL_H - (PANEL_H - 20) * (v - lo) / (hi - lo)

    out = [f'<g class="panel" data-title="{escape(panel.title)}">',
           f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL_H}" fill="#fbfbfb" stroke="#ccc"/>']
    out += _windows(axis, data.windows, top, PANEL_H, labels=first)
    for tick in ticks:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(tick) + 3:.1f}" font-size="10" text-anchor="end" fill="#555">{_fmt(tick)}</text>')
    for i, (key, pts) in enumerate(panel.series.items()):
        color = COLORS[i % len(COLORS)]
        runs: list[list[str]] = [[]]
        for t, v in pts:
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{axis.x(t):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif run:
                out.append(f'<polyline class="series" data-key="{escape(key)}" fill="none" stroke="{color}" '
                           f'stroke-width="1.6" points="{" ".join(run)}"/>')
        gaps = sum(1 for _, v in pts if v is None)
        note = f" ({gaps} unreadable)" if gaps else ""
        out.append(f'<text x="{LEFT + 8 + 260 * i}" y="{top + PANEL_H + 12}" font-size="11" fill="{color}">'
                   f'&#9632; {escape(key)}{note}</text>')
    out += _relaunches(axis, data.relaunches, top, PANEL_H, labels=first)
    out.append(f'<text class="panel-title" x="{LEFT + 6}" y="{top - 4}" font-size="12" font-weight="bold" fill="#222">{escape(panel.title)}</text>')
    out.append("</g>")
    return out


def _strip(axis: Axis, strip: Strip, top: float, colors: dict[str, str]) -> list[str]:
    out = [f'<g class="strip" data-key="{escape(strip.key)}">',
           f'<text x="{LEFT - 6}" y="{top + 16}" font-size="10" text-anchor="end" fill="#333">{escape(strip.key.split("{")[0])}</text>']
    for start, end, value in strip.segments:
        color = colors.setdefault(value, STRIP_COLORS[len(colors) % len(STRIP_COLORS)])
        x0, x1 = axis.x(start), axis.x(end)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(0.5, x1 - x0):.1f}" height="{STRIP_H - 4}" fill="{color}">'
                   f'<title>{escape(value)}: t={start:.2f}s..{end:.2f}s</title></rect>')
        if x1 - x0 > 7 * len(value) + 6:
            out.append(f'<text x="{x0 + 4:.1f}" y="{top + 15}" font-size="10" fill="#222">{escape(value)}</text>')
    out.append("</g>")
    return out


def chart(data: ReportData) -> str:
    axis = Axis(data.start, data.duration)
    body: list[str] = []
    # Phase labels above the panels, in as many rows as they need; lines first, labels over them.
    phases = place_labels([(axis.x(mk.t), mk.label) for mk in data.phases if mk.t >= axis.start], 0, WIDTH)
    top = 12.0 + ROW_H * rows_of(phases)
    for p in phases:
        x = p.x - 2 if p.anchor == "start" else p.x + 2
        body.append(f'<line class="phase" x1="{x:.1f}" x2="{x:.1f}" y1="{10 + ROW_H * p.row}" y2="{top - 2:.0f}" stroke="#aaa"/>')
    for p in phases:
        body.append(f'<text class="label phase-label" x="{p.x:.1f}" y="{9 + ROW_H * p.row}" text-anchor="{p.anchor}" '
                    f'font-size="9" fill="#666" {HALO}>{escape(p.text)}</text>')
    for i, panel in enumerate(data.panels):
        body += _panel(axis, panel, top + 14, data, first=i == 0)
        top += PANEL_H + 14 + GAP + 8
    for strip in data.strips:
        body += _strip(axis, strip, top, {})
        top += STRIP_H
    if data.strips:
        body += _windows(axis, data.windows, top - STRIP_H * len(data.strips), STRIP_H * len(data.strips), labels=False)
    top += 6
    for tick in nice_ticks(axis.start, axis.end, 10):
        if tick > axis.end + 1e-9 or tick < axis.start - 1e-9:
            continue
        x = axis.x(tick)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top}" stroke="#555"/>'
                    f'<text x="{x:.1f}" y="{top + 12}" font-size="10" text-anchor="middle" fill="#555">{_fmt(tick)}s</text>')
    height = top + 26
    return (f'<svg id="timeline" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
            f'aria-label="timeline of the run">' + "".join(body) + "</svg>")
