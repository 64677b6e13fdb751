"""The report from a journal: what is charted, marked and listed; self-contained HTML; failure text."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chaos.errors import UsageError
from chaos.report import read_journal, render_journal, write_report
from chaos.report.data import extract
from chaos.report.keyprobes import key_probes
from chaos.report.svg import nice_ticks
from chaos.report.text import explain

ROOT = Path(__file__).resolve().parents[3]


def journal(**over) -> dict:
    """A journal shaped like the runner's: an edge killed at t=5, a relaunch seen at t=6.5."""
    ts = [round(2 + 0.5 * i, 2) for i in range(20)]  # 2.0 .. 11.5
    doc = {
        "format": 1, "run_id": "20260101-000000-abcdef", "seed": 2, "file": "experiments/edge-loss.yaml",
        "experiment": {"title": "Losing <the> edge", "stack": "audio-room", "profile": "ci", "scale": {"edge": 3}},
        "backend": "docker", "image_ids": {"services": "sha256:1234"}, "stack_run_id": "20260101-000000-abcdef",
        "verdict": "deviated", "reason": "1 assertion(s) failed; first: listeners-back: ...", "exit_code": 1,
        "as_declared": None, "duration_s": 12.0, "started": 1767225600.0,
        "series": {
            "crowd.connected": [[t, 60.0 if t < 5 or t > 9 else 10.0] for t in ts],
            "crowd.join_latency_p95": [[t, None if t == 2.0 else 0.2] for t in ts],
            "crowd.frame_gap_p99": [[t, 0.05] for t in ts],
            "room.relaunches{room=launch}": [[t, 0.0 if t < 6.5 else 1.0] for t in ts],
            "room.state{room=launch}": [[t, "live" if t < 5 or t >= 6.5 else "relaunching"] for t in ts],
        },
        "faults": [{"step": "kill-edge", "fault": "kill", "hit": ["edge-2"], "injected_t": 5.0, "rolled_back_t": 11.8}],
        "assertions": [
            {"check": "listeners-back", "phase": "recovery", "probe": "crowd.connected", "expect": ">= 55", "mode": "within",
             "ok": False, "message": "listeners-back: expected >= 55 within 3s of kill-edge ending; not met",
             "observed": [[7.0, 10.0], [8.0, 10.0]], "recovery_s": None, "anchor": "kill-edge ending", "t": 8.0},
            {"check": "relaunched", "phase": "recovery", "probe": "room.relaunches", "expect": ">= 1", "mode": "within",
             "ok": True, "message": "relaunched: observed 1", "observed": [[6.5, 1.0]], "recovery_s": 1.5, "anchor": "x"},
        ],
        "events": [
            {"kind": "run_started", "t": 0.0, "run_id": "r", "seed": 2, "backend": "docker"},
            {"kind": "phase_started", "t": 4.9, "phase": "method"},
            {"kind": "fault_injected", "t": 5.0, "step": "kill-edge", "fault": "kill", "hit": ["edge-2"]},
            {"kind": "operator_note", "t": 5.5, "wall": 1767225605.5, "message": "edge-2 gone, <watching>"},
            {"kind": "check_result", "t": 8.0, "check": "listeners-back", "ok": False, "message": "listeners-back: not met"},
            {"kind": "fault_rolled_back", "t": 11.8, "step": "kill-edge", "fault": "kill", "hit": ["edge-2"], "reason": "end of run", "ok": True},
            {"kind": "verdict_reached", "t": 12.0, "verdict": "deviated", "reason": "1 assertion(s) failed"},
        ],
    }
    doc.update(over)
    return doc


def test_key_probes_are_picked_by_role_from_the_stack_declaration() -> None:
    from chaos.stack import load_stack

    declared = load_stack(ROOT / "docker" / "stack.yaml").spec.probes
    assert key_probes(declared) == ["crowd.connected", "crowd.join_latency_p95", "crowd.frame_gap_p99", "room.relaunches"]
    assert key_probes(["x.connected_ratio", "y.join_latency_p50"]) == ["x.connected_ratio", "y.join_latency_p50"]
    assert key_probes(["a.b"]) == []


def test_extract_charts_roles_marks_relaunches_and_shades_faults() -> None:
    data = extract(journal())
    assert [p.title for p in data.panels][:3] == ["Listeners connected", "Join latency (s)", "Frame gaps (s)"]
    assert list(data.panels[0].series) == ["crowd.connected"]
    assert data.panels[1].series["crowd.join_latency_p95"][0] == (2.0, None)  # unreadable stays a gap
    assert [(m.t, m.label) for m in data.relaunches] == [(6.5, "relaunch #1")]
    assert [(w.label, w.start, w.end, w.ok) for w in data.windows] == [("kill-edge: kill (edge-2)", 5.0, 11.8, True)]
    strip = next(s for s in data.strips if s.key.startswith("room.state"))
    assert [v for _, _, v in strip.segments] == ["live", "relaunching", "live"]
    assert data.notes == [(5.5, "edge-2 gone, <watching>")]
    env = dict(data.environment)
    assert env["backend"] == "docker" and env["seed"] == "2" and "sha256:1234" in env["images"]
    assert data.missing_roles == [] and data.start == pytest.approx(1.0)


def test_missing_roles_are_said_and_a_fault_never_rolled_back_is_shaded_to_the_end() -> None:
    doc = journal(series={"crowd.connected_ratio": [[1.0, 1.0], [2.0, 0.5]]},
                  faults=[{"step": "s", "fault": "pause", "hit": ["edge-1"], "injected_t": 1.5, "rolled_back_t": None}])
    data = extract(doc)
    assert data.missing_roles == ["Join latency (s)", "Frame gaps (s)"]
    assert data.windows[0].end == pytest.approx(12.0)


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value and "://" in value:
                self.external.append(f"{tag} {name}={value}")


def test_html_is_self_contained_escaped_and_complete(tmp_path: Path) -> None:
    html = render_journal(journal())
    parser = _Resources()
    parser.feed(html)
    assert parser.external == [] and "link" not in parser.tags and "script" not in parser.tags
    assert "url(" not in html and "@import" not in html
    assert "Losing &lt;the&gt; edge" in html and "<the>" not in html
    assert 'data-verdict="deviated"' in html and "DEVIATED" in html
    assert html.count('class="fault-window"') >= 3 and 'class="relaunch"' in html and "<polyline" in html
    assert "edge-2 gone, &lt;watching&gt;" in html  # the game-day note
    assert "&gt;= 55" in html and "10 at t=8.00s" in html  # expected and observed of the failed assertion


def test_write_report_default_path_and_bad_journals(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(journal()))
    out = write_report(path)
    assert out == tmp_path / "run.html" and out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(UsageError, match="no such journal file"):
        read_journal(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="invalid JSON"):
        read_journal(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(UsageError, match="not a roomquake journal"):
        read_journal(tmp_path / "other.json")


def test_explain_names_assertion_expected_observed_and_the_timeline_around() -> None:
    text = explain({**journal(), "_path": "j.json"}, "r.html")
    lines = text.splitlines()
    assert lines[0].startswith("DEVIATED: ")
    assert "failed assertion listeners-back (recovery, within): probe crowd.connected" in text
    assert "  expected: >= 55" in lines and "  observed: 10 at t=8.00s" in lines
    assert any(line.startswith("  >>") and "listeners-back" in line for line in lines)
    assert any("fault kill [kill-edge] hit edge-2" in line for line in lines)
    assert any(line.startswith("  samples crowd.connected: ") and "5.0s=10" in line and "9.5s=60" in line for line in lines)
    assert lines[-2:] == ["journal: j.json", "report: r.html"]


def test_nice_ticks_cover_the_range() -> None:
    assert nice_ticks(0, 60, 4) == [0, 20, 40, 60]
    ticks = nice_ticks(0.013, 0.47, 4)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.47 and len(ticks) <= 7


def test_a_run_that_never_sampled_still_reports_why() -> None:
    doc = {"run_id": "x", "verdict": "errored", "reason": "stack failed",
           "events": [{"kind": "run_error", "t": 0.5, "phase": "bring_up", "message": "edge-2 did not become healthy"}]}
    html = render_journal(doc)
    assert 'data-verdict="errored"' in html and "edge-2 did not become healthy" in html
    assert "No assertion was judged" in html and "<svg" in html
    assert explain(doc).splitlines()[0] == "ERRORED: stack failed"


def test_a_check_that_was_not_disturbed_shows_no_recovery_time() -> None:
    from chaos.run.progress import summary

    undisturbed = {"check": "room-live-again", "phase": "recovery", "probe": "room.state", "expect": "live", "mode": "within",
                   "ok": False, "outcome": "not_disturbed", "recovery_s": None, "anchor": "kill-edge ending",
                   "message": "room-live-again: not disturbed: live held at all 40 samples", "observed": [[6.0, "live"]]}
    doc = journal(assertions=[*journal()["assertions"], undisturbed], not_disturbed=["room-live-again"])
    html = render_journal(doc)
    row = next(line for line in html.split("<tr") if "room-live-again" in line)
    assert 'data-outcome="not_disturbed"' in row and ">not disturbed<" in row and " s<" not in row
    assert "1.50 s" in html  # the disturbed check keeps its figure
    text = explain({**doc, "_path": "j.json"})
    assert "  outcome: not disturbed (the probe never failed after the fault: nothing recovered, no recovery time)" in text
    assert summary(doc) == ["recovered: relaunched after 1.50s (from x)",
                            "not disturbed: room-live-again (its probe never failed after the fault: no recovery time)"]


def test_history_and_relaunch_audit_are_shown() -> None:
    from chaos.checkers.history import check

    t0 = 1767225600.0
    seg = lambda gen, a, b: {"gen": gen, "edge": "e", "first_seq": 0, "last_seq": 9, "first_t": t0 + a, "last_t": t0 + b,  # noqa: E731
                             "frames": 10, "dups": 0, "reorders": 0, "max_gap_s": 0.1}
    listeners = [{"id": "crowd-1/1", "room": "launch", "joined_at": t0 + 2, "active": True, "events": [],
                  "segments": [seg(0, 2, 5), seg(1, 6.5, 12)]},
                 {"id": "crowd-1/2", "room": "launch", "joined_at": t0 + 2, "active": True, "events": [],
                  "segments": [seg(0, 2, 5)]}]
    records = [{"generation": 1, "reason": "edge_lost", "failed_at": t0 + 4.9, "completed_at": t0 + 6.0}]
    report = check([{"instance": "crowd-1", "now": t0 + 12, "listeners": listeners}], {"launch": records})["launch"]
    failed = {"check": "history.never_heard_relaunch", "phase": "history", "probe": "history{room=launch}", "mode": "history",
              "expect": "== 0", "ok": False, "message": "history.never_heard_relaunch: expected == 0; 1 of 2 never heard generation 1",
              "observed": [[12.0, 1.0]]}
    doc = journal(t0_wall=t0, assertions=[*journal()["assertions"], failed],
                  history={"room": "launch", "instances": ["crowd-1"], "errors": [], "report": report.to_json()},
                  relaunches=[{"generation": 1, "reason": "edge_lost", "failed_t": 4.9, "completed_t": 6.0,
                               "explained_by": ["kill-edge"], "unexpected": False},
                              {"generation": 2, "reason": "edge_lost", "failed_t": 1.0, "completed_t": 2.0,
                               "explained_by": [], "unexpected": True}],
                  unexpected_relaunches=1)
    html = render_journal(doc)
    assert 'id="history"' in html and "History assertions: 0 met, 1 failed" in html
    assert "1 (e.g. crowd-1/2)" in html and "t=6.00s" in html and "50%" in html  # half came back within 10 s
    assert 'data-unexpected="1"' in html and "<b>unexpected</b>: no fault was active" in html
    text = explain({**doc, "_path": "j.json"})
    assert "listener histories of launch: 2 listeners, 1 never heard the relaunched room" in text
    assert "unexpected relaunches (no fault active when their failure began): 1: generation 2" in text
    plain = render_journal(journal())
    assert "No listener history in this run" in plain and "Relaunches not known" in plain


def test_a_stack_of_another_kind_gets_its_own_series_and_no_audio_room_wording() -> None:
    """An imported Compose project samples none of the audio-room's roles: its own series are
    charted, and the report neither lists the audio-room's series as missing nor asks for histories."""
    doc = journal(series={"web.response_p99": [[1.0, 0.02], [2.0, 0.31]], "db.up": [[1.0, 1.0], [2.0, 0.0]]},
                  experiment={"title": "web->db latency", "stack": "shop/stack.yaml", "profile": "", "scale": {}})
    doc.pop("history", None)
    data = extract(doc)
    assert data.missing_roles == []
    assert [(p.title, list(p.series)) for p in data.panels] == [("db.up", ["db.up"]), ("web.response_p99", ["web.response_p99"])]
    html = render_journal(doc)
    assert "Not sampled in this run" not in html
    assert "Join latency" not in html and "Frame gaps" not in html and "Listeners connected" not in html
    assert "This stack keeps no listener histories." in html


def test_an_audio_room_run_that_sampled_nothing_of_one_role_still_says_so() -> None:
    doc = journal(series={"crowd.connected_ratio": [[1.0, 1.0], [2.0, 0.5]]})
    html = render_journal(doc)
    assert "Not sampled in this run: Join latency (s), Frame gaps (s)." in html
    assert "This stack keeps no listener histories." not in html


def test_a_run_that_sampled_nothing_says_so_without_guessing_the_stack() -> None:
    doc = journal(series={}, verdict="errored", reason="bring-up failed")
    doc.pop("history", None)
    html = render_journal(doc)
    assert "No series were sampled in this run." in html
    assert "Not sampled in this run:" not in html and "This stack keeps no listener histories." not in html
