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
.history-verdict.ok{color:#1a7f37}.history-verdict.fail{color:#cf222e;font-weight:bold}
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
        if a.get("back_during_s") is not None:
            recovery = f"during the fault: {a['back_during_s']:.2f} s after it began"
        elif a.get("recovery_s") is not None:
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


def _seconds(value: Any) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) else "-"


def _fraction(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "-"


def _history(data: ReportData) -> str:
    """What every listener heard: the checker's findings, and the verdict of the history assertions."""
    history = data.history or {}
    report = history.get("report")
    if not report and data.history is None and data.panels and not data.audio_room:
        return '<p class="muted" id="history">This stack keeps no listener histories.</p>'
    if not report:
        why = "; ".join(history.get("errors") or []) or "the stack declares no listener histories, or the run ended before they were read"
        return f'<p class="muted" id="history">No listener history in this run ({escape(why)}).</p>'
    judged = data.history_results
    verdict = ""
    if judged:
        failed = [a for a in judged if not a.get("ok")]
        verdict = (f'<p class="history-verdict {"fail" if failed else "ok"}">History assertions: '
                   f'{len(judged) - len(failed)} met, {len(failed)} failed'
                   + (": " + escape("; ".join(str(a.get("message")) for a in failed)) if failed else "") + "</p>")
    worst = ", ".join(f"{lid} {gap:.2f} s" for lid, gap in report.get("worst_gaps", [])[:3]) or "-"
    split = ", ".join(f"{x['listener']} heard gen {x['generation']} after gen {x['after']}" for x in report.get("split_brain", [])[:3])
    never = ", ".join(report.get("never_heard_relaunch") or [])
    rows = [
        ("room", f"{report['room']} ({', '.join(history.get('instances') or [])})"),
        ("listeners", f"{report['listeners']} ({report['active']} still listening, {report['gave_up']} gave up)"),
        ("never heard the relaunched room", f"{report['never_heard_count']}" + (f" (e.g. {never})" if never else "")),
        ("largest gap per listener", f"max {_seconds(report.get('max_gap_s'))}, p99 {_seconds(report.get('max_gap_p99_s'))}, "
                                     f"p50 {_seconds(report.get('max_gap_p50_s'))}; worst: {worst}"),
        ("duplicated frames", f"{report['duplicates']} at {report['duplicate_listeners']} listeners"),
        ("frames out of order", f"{report['out_of_order']} at {report['out_of_order_listeners']} listeners"),
        ("split brain (older generation after a newer one)", f"{report['split_brain_count']}" + (f": {split}" if split else "")),
    ]
    if report.get("truncated") or report.get("dropped"):
        rows.append(("capped histories", f"{report['truncated']} capped, {report['dropped']} listeners dropped"))
    relaunches = report.get("relaunches") or []
    windows = sorted({k for r in relaunches for k in (r.get("back_within") or {})}, key=float)
    table = ""
    if relaunches:
        head = "".join(f"<th>back within {escape(k)} s</th>" for k in windows)
        body = ""
        for r in relaunches:
            at = r["at"] - data.t0_wall if data.t0_wall is not None else None
            cells = "".join(f"<td>{_fraction((r.get('back_within') or {}).get(k))}</td>" for k in windows)
            body += (f"<tr><td>{r['generation']}{' (inferred)' if r.get('inferred') else ''}</td>"
                     f"<td>{'t=' + format(at, '.2f') + 's' if at is not None else '-'}</td><td>{escape(str(r.get('reason') or '-'))}</td>"
                     f"<td>{r['listeners']}</td>{cells}<td>{_seconds(r.get('back_s_p50'))} / {_seconds(r.get('back_s_max'))}</td>"
                     f"<td>{r.get('never_count', len(r.get('never') or []))}</td></tr>")
        table = (f'<table class="relaunch-returns"><tr><th>generation</th><th>relaunched</th><th>reason</th><th>listeners before</th>'
                 f"{head}<th>back after (p50 / max)</th><th>never back</th></tr>{body}</table>")
    return f'<div id="history">{verdict}{_table(rows)}{table}</div>'


def _relaunches(data: ReportData) -> str:
    if data.relaunch_audit is None or data.unexpected_relaunches is None:
        return '<p class="muted" id="relaunch-audit">Relaunches not known: the stack declares no relaunch records.</p>'
    if not data.relaunch_audit:
        return '<p id="relaunch-audit" data-unexpected="0">No relaunch in this run.</p>'
    rows = "".join(
        f'<tr class="{"fail" if r.get("unexpected") else "ok"}"><td>{r.get("generation")}</td><td>{escape(str(r.get("reason")))}</td>'
        f"<td>{'-' if r.get('failed_t') is None else format(r['failed_t'], '.2f') + ' s'}</td>"
        f"<td>{'-' if r.get('completed_t') is None else format(r['completed_t'], '.2f') + ' s'}</td>"
        f"<td>{escape(', '.join(r.get('explained_by') or [])) or '<b>unexpected</b>: no fault was active'}</td></tr>"
        for r in data.relaunch_audit)
    return (f'<table id="relaunch-audit" data-unexpected="{data.unexpected_relaunches}"><tr><th>generation</th><th>reason</th>'
            f"<th>failure began (t)</th><th>completed (t)</th><th>explained by</th></tr>{rows}</table>")


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
    elif not data.panels and not data.strips:
        missing = '<p class="muted">No series were sampled in this run.</p>'
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
<h2>Listener histories</h2>
{_history(data)}
<h2>Relaunches</h2>
{_relaunches(data)}
<h2>Game-day notes</h2>
{_notes(data)}
<h2>Environment</h2>
{_table(data.environment)}
<h2>Events</h2>
{_events(data)}
<p class="muted">Written by roomquake from the run's journal.</p>
</body></html>
"""
