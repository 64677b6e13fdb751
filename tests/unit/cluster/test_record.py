"""The cluster record: written before each resource is made, owned like a run, refused while in use."""

from __future__ import annotations

import json
import os

import pytest

from chaos.cluster import record as rec
from chaos.cluster.system import ClusterError, NeedsRoot, require_root
from chaos.errors import UsageError
from chaos.labels import OWNER_PID, RunIdentity
from chaos.stack import registry


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_each_resource_is_on_disk_before_it_is_made_and_gone_after(state):
    record = rec.new_record("dev", RunIdentity())
    entry = record.will_make("bridge", name="rqb-dev")
    on_disk = json.loads((state / "clusters" / "dev.json").read_text())
    assert on_disk["made"] == [{"kind": "bridge", "name": "rqb-dev"}]
    assert on_disk["state"] == rec.COMING_UP and on_disk["owner"][OWNER_PID] == str(os.getpid())
    record.forget(entry)
    assert json.loads((state / "clusters" / "dev.json").read_text())["made"] == []


def test_cluster_records_are_not_runs(state):
    rec.new_record("dev", RunIdentity())
    registry.save("run-a", {"created": 1.0})
    assert [r["run_id"] for r in registry.records()] == ["run-a"]
    assert [r.name for r in rec.records()] == ["dev"]


def test_a_second_up_is_refused_with_what_to_do(state):
    record = rec.new_record("dev", RunIdentity())
    with pytest.raises(ClusterError, match="being worked on by pid"):
        rec.new_record("dev", RunIdentity())
    record.set(state=rec.UP)
    with pytest.raises(ClusterError, match="already up"):
        rec.new_record("dev", RunIdentity())
    record.claim(RunIdentity(pid=999_999_999), rec.COMING_UP)  # a dead owner left it half made
    with pytest.raises(ClusterError, match="cluster down, or roomquake clean"):
        rec.new_record("dev", RunIdentity())


@pytest.mark.parametrize("name", ["", "Dev", "1dev", "toolong", "d-v"])
def test_names_are_short_because_they_go_into_interface_names(name):
    with pytest.raises(UsageError, match="1-6 lowercase"):
        rec.check_name(name)


def test_unknown_cluster_says_how_to_start_one():
    with pytest.raises(ClusterError, match="roomquake cluster up --nodes 3"):
        rec.load("nope")


def test_root_is_asked_for_in_one_line(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NeedsRoot) as err:
        require_root()
    assert "needs root" in str(err.value) and "\n" not in err.value.one_line()
