"""A game day driven through a pipe: notes, a confirmed step, a halt with a fault active."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


def _journal(lines: list[str]) -> dict:
    path = next(line.split("journal: ", 1)[1] for line in lines if line.startswith("journal: "))
    return json.loads(Path(path).read_text())


@pytest.mark.timeout(150)
def test_halt_in_the_middle_rolls_back_every_active_fault(gameday, tmp_path: Path, state_dir: Path) -> None:
    session = gameday(["--backend", "local", "--journal-dir", str(tmp_path), "experiments/edge-loss.yaml"])
    session.wait_for("step kill-edge")  # the plan comes first
    session.wait_for(">> next step kill-edge")  # steady state held; it waits for us
    session.type("crowd steady before the kill")  # a note, not a confirmation
    session.wait_for("note: crowd steady before the kill")
    session.type("")  # Enter: run the step
    hit = session.wait_for("fault kill [kill-edge] hit")
    killed = re.search(r"hit (edge-\d)", hit).group(1)
    session.type("h")  # halt while the kill is active (it has no 'for': active until the end)
    session.wait_for("HALT (key): rolling back every fault now (active: kill-edge)")
    assert session.finish() == 3  # aborted
    out = session.lines
    assert any(line.startswith("HALTED: every fault rolled back at once: kill-edge") for line in out), out
    report = Path(next(line.split("report: ", 1)[1] for line in out if line.startswith("report: ")))
    journal = _journal(out)
    assert journal["verdict"] == "aborted" and "halted by the operator" in journal["reason"]
    kinds = [e["kind"] for e in journal["events"]]
    # the note is journaled with its time, before the confirmation and the fault
    note = next(e for e in journal["events"] if e["kind"] == "operator_note")
    assert note["message"] == "crowd steady before the kill" and note["t"] > 0 and note["wall"] > 0
    assert kinds.index("operator_note") < kinds.index("step_confirmed") < kinds.index("fault_injected") < kinds.index("halted")
    rolled = [e for e in journal["events"] if e["kind"] == "fault_rolled_back"]
    assert [(e["step"], e["ok"], e["hit"]) for e in rolled] == [("kill-edge", True, [killed])]
    # nothing left running: the stack it brought up is gone from the registry, the report has the note
    assert not list(state_dir.glob("2*.json"))
    html = report.read_text()
    assert "crowd steady before the kill" in html and 'data-verdict="aborted"' in html
