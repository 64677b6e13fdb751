"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no external URL)."""

from __future__ import annotations

from html import escape
from typing import Any

from chaos.report.data import ReportData
from chaos.report.svg import chart

VERDICT_COLORS = {"passed": "#1a7f37", "deviated": "#b35900", "aborted": "#8250df", "errored": "#cf222e"}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;padding:0 12px}
h1{font-size:1.35em;margin:0 0 6px}h2{font-size:1.1em;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.verdict{display:inline-block;color:#fff;font-weight:bold;padding:4px 12px;border-radius:6px;letter-spacing:.05em}
.reason{margin:8px 0 0;color:#444}
table{border-collapse:collapse;width:100%;font-size:.88em}td,th{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.fail td{background:#fff1f0}tr.undisturbed td{background:#fff8e5}tr.ok td.mark{color:#1a7f37}tr.fail td.mark{color:#cf222e;font-weight:bold}
.legend span{display:inline-block;margin-right:16px;font-size:.85em}.swatch{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px}
.muted{color:#666;font-size:.85em}code{font-size:.95em}
"""


def _observed(result: dict[str, Any]) -> str:
    observed = result.get("observed") or []
    if not observed:
        return "no sample"
    t, value = observed[-1]
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{shown} at t={float(t):.2f}s"


def _assertions(data: ReportData) -> str:
    if not data.assertions:
        return '<p class="muted">No assertion was judged (the run ended before any).</p>'
    rows = ["<tr><th></th><th>assertion</th><th>phase</th><th>probe</th><th>expected</th><th>observed</th>"
            "<th>recovery</th><th>detail</th></tr>"]
    for a in data.assertions:
        ok = bool(a.get("ok"))
        undisturbed = a.get("outcome") == "not_disturbed"
        if a.get("recovery_s") is not None:
            recovery = f"{a['recovery_s']:.2f} s"
        else:
            recovery = "not disturbed" if undisturbed else ""
        state = ("ok" if ok else "fail") + (" undisturbed" if undisturbed else "")
        rows.append(
            f'<tr class="assertion {state}" data-outcome="{escape(str(a.get("outcome") or ("ok" if ok else "failed")))}">'
            f'<td class="mark">{"&#10003;" if ok else "&#10007;"}</td>'
            f"<td>{escape(str(a.get('check')))}</td><td>{escape(str(a.get('phase', '')).replace('_', ' '))}</td>"
            f"<td><code>{escape(str(a.get('probe')))}</code></td><td>{escape(str(a.get('expect')))} "
            f"<span class=muted>({escape(str(a.get('mode')))})</span></td><td>{escape(_observed(a))}</td>"
            f"<td>{escape(recovery)}</td><td class=muted>{escape(str(a.get('message', '')))}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _notes(data: ReportData) -> str:
    if not data.notes:
        return '<p class="muted">No game-day notes in this run.</p>'
    return '<table id="notes">' + "".join(
        f"<tr><td>t={t:.1f}s</td><td>{escape(text)}</td></tr>" for t, text in data.notes) + "</table>"


def _events(data: ReportData) -> str:
    rows = "".join(f'<tr class="ev-{escape(kind)}"><td>{t:.2f}s</td><td>{escape(text)}</td></tr>' for t, kind, text in data.events)
    return f"<details><summary>{len(data.events)} events</summary><table>{rows}</table></details>"


def render(data: ReportData) -> str:
    color = VERDICT_COLORS.get(data.verdict, "#57606a")
    declared = ""
    if data.as_declared is not None:
        declared = (" &mdash; known weakness shown, as declared" if data.as_declared
                    else " &mdash; NOT as declared")
    missing = ""
    if data.missing_roles:
        missing = f'<p class="muted">Not sampled in this run: {escape(", ".join(data.missing_roles))}.</p>'
    legend = ('<p class="legend"><span><i class="swatch" style="background:#f4a582"></i>fault active</span>'
              '<span><i class="swatch" style="background:#b2182b"></i>fault whose rollback failed</span>'
              '<span><i class="swatch" style="border-left:2px dashed #6a3d9a;width:0"></i>relaunch</span></p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(data.title)} - {escape(data.verdict)}</title><style>{CSS}</style></head>
<body>
<h1>{escape(data.title)}</h1>
<div><span id="verdict" class="verdict" data-verdict="{escape(data.verdict)}" style="background:{color}">{escape(data.verdict.upper())}</span>{declared}</div>
<p class="reason">{escape(data.reason)}</p>
<h2>Timeline</h2>
{legend}
{chart(data)}
{missing}
<h2>Assertions</h2>
{_assertions(data)}
<h2>Game-day notes</h2>
{_notes(data)}
<h2>Environment</h2>
{_table(data.environment)}
<h2>Events</h2>
{_events(data)}
<p class="muted">Written by roomquake from the run's journal.</p>
</body></html>
"""
