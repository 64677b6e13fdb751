"""Removal walks the record: engines first (side by side), the rest newest first, the record last."""

from __future__ import annotations

import pytest

from chaos.cluster import lifecycle
from chaos.cluster import record as rec
from chaos.cluster.system import ClusterError
from chaos.labels import RunIdentity


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path))
    return tmp_path


def _made() -> rec.ClusterRecord:
    record = rec.new_record("dev", RunIdentity())
    for kind, name in [("dir", "/run/rqc/dev"), ("bridge", "rqb-dev"), ("netns", "rq-dev-n1"), ("veth", "rqv-dev-1")]:
        record.will_make(kind, name=name)
    record.will_make("dockerd", node=1)
    return record


def test_engines_go_first_then_the_rest_in_reverse_then_the_record(monkeypatch):
    record = _made()
    removed = []
    monkeypatch.setattr(lifecycle, "_remove_entry", lambda r, e: removed.append(e["kind"]))
    lifecycle._remove_all(record, lambda _: None)
    assert removed == ["dockerd", "veth", "netns", "bridge", "dir"]
    assert not record.path.exists()


def test_an_engine_that_will_not_stop_keeps_everything_for_a_retry(monkeypatch):
    record = _made()

    def remove(r, entry):
        if entry["kind"] == "dockerd":
            raise ClusterError("still running")

    monkeypatch.setattr(lifecycle, "_remove_entry", remove)
    with pytest.raises(ClusterError, match="run roomquake cluster down again"):
        lifecycle._remove_all(record, lambda _: None)
    assert [e["kind"] for e in rec.load("dev").made] == ["dir", "bridge", "netns", "veth", "dockerd"]


def test_clean_sweeps_only_dead_unfinished_clusters(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    swept = []
    monkeypatch.setattr(lifecycle, "_remove_all", lambda r, p: swept.append(r.name) or r.delete())
    live = rec.new_record("live", RunIdentity())
    up = rec.new_record("up", RunIdentity(pid=999_999_999))
    up.set(state=rec.UP)
    dead = rec.new_record("dead", RunIdentity(pid=999_999_999))
    assert lifecycle.sweep_dead_clusters(dry_run=True) == ["cluster dead: would remove 0 resource(s) left by pid 999999999 (coming up)"]
    lines = lifecycle.sweep_dead_clusters()
    assert swept == ["dead"] and lines[0].startswith("cluster dead: removed")
    assert live.path.exists() and up.path.exists() and not dead.path.exists()
