"""Every shipped experiment, run for real on the local backend, gives its declared verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiment import load_experiment
from chaos.run import RunOptions, Runner, Verdict
from chaos.run.journal import read

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


def runs_on(path: Path, backend: str) -> bool:
    from chaos.experiment.stackcheck import backends_for

    allowed = backends_for(load_experiment(path))
    return allowed is None or backend in allowed


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", [p for p in SHIPPED if runs_on(p, "local")], ids=lambda p: p.stem)  # node faults: swarm only
def test_shipped_experiment_holds_its_verdict_locally(path: Path, tmp_path: Path, state_dir: Path) -> None:
    experiment = load_experiment(path)
    result = Runner(experiment, path, RunOptions(backend="local", journal_dir=tmp_path, progress=False)).run()
    journal = read(result.journal)
    failed = [a["message"] for a in journal["assertions"] if not a["ok"]]
    if experiment.known_weakness is None:
        assert result.verdict is Verdict.PASSED, (result.reason, failed)
    else:
        assert result.verdict is Verdict.DEVIATED and result.as_declared, (result.reason, failed)
        assert {a["check"] for a in journal["assertions"] if not a["ok"]} == set(experiment.known_weakness.deviates)
    assert result.exit_code == 0
    # the journal has what the timeline needs
    assert journal["backend"] == "local" and journal["seed"] == experiment.seed
    injected = [e for e in journal["events"] if e["kind"] == "fault_injected"]
    rolled = [e for e in journal["events"] if e["kind"] == "fault_rolled_back"]
    assert sorted(e["step"] for e in injected) == sorted(e["step"] for e in rolled)
    assert all(e["ok"] for e in rolled)
    key = "room.state{room=launch}"
    series = journal["series"][key]
    assert len(series) / (series[-1][0] - series[0][0]) >= 2  # >= 2 samples per second
    assert not list(state_dir.glob("runner-*.json"))  # ledger closed: nothing left to undo
    assert not list(state_dir.glob("2*.json"))  # the stack it brought up is recorded as gone
