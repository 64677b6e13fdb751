"""Run registry: records found by id or as the latest, atomic writes, clear errors."""

from __future__ import annotations

import pytest

from chaos.stack import registry
from chaos.stack.errors import UnknownRun


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_latest_is_the_newest_created_and_remove_forgets_record_and_folder(state):
    with pytest.raises(UnknownRun, match="no running stack is recorded"):
        registry.load()
    registry.save("run-a", {"created": 1.0, "backend": "local"})
    registry.save("run-b", {"created": 2.0, "backend": "docker"})
    assert registry.load()["run_id"] == "run-b"
    assert registry.load("run-a")["backend"] == "local"
    (registry.run_dir("run-b") / "logs").mkdir()
    registry.remove("run-b")
    assert registry.load()["run_id"] == "run-a"
    assert sorted(p.name for p in state.iterdir()) == ["run-a.json"]


def test_unknown_run_names_the_known_ones():
    registry.save("run-a", {"created": 1.0})
    with pytest.raises(UnknownRun, match=r"no running stack with run id 'zzz' \(known: run-a\)"):
        registry.load("zzz")


def test_a_torn_record_is_skipped_not_fatal(state):
    (state / "broken.json").write_text("{not json")
    registry.save("run-a", {"created": 1.0})
    assert [r["run_id"] for r in registry.records()] == ["run-a"]
