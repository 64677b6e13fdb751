"""Swarm backend parts without an engine: published ports, node engines named by the user, the dead-run sweep."""

from __future__ import annotations

import pytest

from chaos import labels as L
from chaos.stack import swarm, swarm_clean
from chaos.stack.errors import StackError
from chaos.stack.swarm_engines import parse_engines


def test_ports_are_free_in_the_swarm_distinct_and_the_same_for_the_same_run():
    names = ["proxy-1", "state-1", "edge-1"]
    first = swarm.choose_ports("run-a", names, set())
    assert first == swarm.choose_ports("run-a", names, set()) and len(set(first.values())) == 3
    taken = set(first.values())
    again = swarm.choose_ports("run-a", names, taken)
    assert not taken & set(again.values()) and all(p in swarm.PORTS for p in again.values())
    with pytest.raises(StackError, match="no free port left"):
        swarm.choose_ports("run-a", names, set(swarm.PORTS))


def test_node_engines_are_named_hostname_equals_url():
    assert parse_engines("n1=tcp://10.0.0.1:2376, n2=unix:///run/x.sock") == {"n1": "tcp://10.0.0.1:2376", "n2": "unix:///run/x.sock"}
    assert parse_engines("") == {}
    with pytest.raises(StackError, match="must read <node hostname or id>=<engine url>"):
        parse_engines("n1:tcp://x")


class FakeManager:
    def close(self) -> None:
        pass


def test_sweep_removes_dead_runs_only_and_never_kept_ones(monkeypatch):
    dead = {L.RUN: "dead", L.OWNER_PID: "999999999", L.OWNER_HOST: __import__("socket").gethostname(), L.OWNER_START: "1"}
    live = L.RunIdentity(run_id="live").labels()
    kept = {**dead, L.RUN: "kept", L.KEEP: "1"}
    resources = [("service", "s1", "rq-dead-edge-1", dead), ("network", "n1", "rq-dead", dead),
                 ("service", "s2", "rq-live-edge-1", live), ("service", "s3", "rq-kept-edge-1", kept)]
    monkeypatch.setattr(swarm_clean, "reachable_managers", lambda: {"unix:///m.sock": FakeManager()})
    monkeypatch.setattr(swarm_clean, "labelled", lambda client, run_id=None: resources)
    removed = []
    monkeypatch.setattr(swarm_clean, "remove_run", lambda client, run_id, nodes=(): removed.append(run_id))
    monkeypatch.setattr(swarm_clean, "_nodes_of", lambda url: [])
    lines = swarm_clean.sweep(dry_run=True)
    assert removed == [] and lines == ["would remove swarm run dead on unix:///m.sock (owner pid 999999999): 1 service(s), 1 network(s)"]
    swarm_clean.sweep()
    assert removed == ["dead"]
    removed.clear()
    swarm_clean.sweep(include_live=True)
    assert removed == ["dead", "live"]


def test_a_run_whose_local_cluster_is_gone_can_still_be_taken_down(tmp_path, monkeypatch):
    """``cluster down`` took the services with it: ``stack down`` forgets the run instead of failing forever."""
    from chaos.stack.spec import load_stack
    from chaos.stack.swarm_engines import SwarmGone
    from pathlib import Path

    stack = load_stack(Path(__file__).resolve().parents[3] / "docker" / "stack.yaml")
    state = {"owner": {"pid": 1, "host": "h"}, "swarm": {"manager": "unix:///run/rqc/gone/n1/docker.sock"},
             "services": {"edge-1": "abc"}, "ports": {"edge-1": 27001}}
    backend = swarm.SwarmBackend.from_record(stack, "run-a", state)
    assert backend.state("edge-1") == "missing" and backend.leftovers() == []
    backend.teardown()
    assert backend.record()["swarm"] == state["swarm"]
    with pytest.raises(SwarmGone, match="local cluster this run was on is gone"):
        backend.address("edge-1")


def test_clean_without_root_names_the_clusters_it_cannot_remove(tmp_path, monkeypatch):
    from chaos.cluster import lifecycle, record
    from chaos.labels import RunIdentity

    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path))
    record.new_record("dead", RunIdentity(pid=999_999_999))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert lifecycle.sweep_dead_clusters() == ["cluster dead: left by a killed run of pid 999999999; removing it needs root (sudo roomquake clean)"]


@pytest.mark.parametrize("docker_host, manager, expected", [
    ("unix:///run/rqc/rq/n1/docker.sock", True, "swarm"),  # pointed at a manager: swarm by default
    ("unix:///run/rqc/rq/n1/docker.sock", False, "docker"),
    (None, True, "docker"),  # the machine's own engine stays docker even in swarm mode
])
def test_default_backend_is_swarm_only_when_docker_host_names_a_manager(monkeypatch, docker_host, manager, expected):
    import docker

    from chaos.stack.bringup import default_backend

    class Engine:
        def ping(self) -> bool:
            return True

        def info(self) -> dict:
            return {"Swarm": {"ControlAvailable": manager}}

        def close(self) -> None:
            pass

    monkeypatch.setattr(docker, "from_env", lambda **kwargs: Engine())
    if docker_host:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    else:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert default_backend() == expected


def test_a_pause_the_freezer_gives_up_on_is_asked_again_as_on_docker():
    """Seen in CI on the local cluster at load ~14: 'OCI runtime pause failed: unable to freeze'."""
    import docker

    calls: list[str] = []

    class Api:
        def pause(self, container: str) -> None:
            calls.append(container)
            if len(calls) < 3:
                raise docker.errors.APIError("Cannot pause container c1: OCI runtime pause failed: unable to freeze: unknown")

    backend = object.__new__(swarm.SwarmBackend)
    backend._container = lambda name, doing: (type("Engine", (), {"api": Api()})(), "c1")  # type: ignore[method-assign]
    backend.pause("postgres-1")
    assert calls == ["c1", "c1", "c1"]


class FakeApi:
    """What labelled() and the slots read of a manager: no service, network or config, two nodes' labels."""

    def __init__(self, node_labels: dict[str, dict[str, str]]) -> None:
        self.node_labels = node_labels

    def services(self, filters=None):
        return []

    def networks(self, filters=None):
        return []

    def configs(self, filters=None):
        return []

    def nodes(self):
        return [{"ID": nid, "Description": {"Hostname": f"host-{nid}"}, "Spec": {"Labels": labels}}
                for nid, labels in self.node_labels.items()]


def test_a_run_that_left_only_its_slot_labels_is_swept_by_their_owner(monkeypatch):
    from chaos.stack import swarm_slots as slots

    dead = slots.owner_value(L.RunIdentity(run_id="dead", pid=2 ** 22 + 7))
    live = slots.owner_value(L.RunIdentity(run_id="live"))
    client = type("Client", (), {"api": FakeApi({
        "n1": {"zone": "a", slots.key("dead", "edge-1"): dead, slots.key("live", "edge-1"): live},
        "n2": {slots.key("dead", "edge-1"): dead, slots.key("kept", "edge-2"): "keep"},
    })})()
    found = swarm_clean.labelled(client)
    assert [(kind, rid, name) for kind, rid, name, _ in found] == [
        ("node label", "n1", f"{slots.key('dead', 'edge-1')} on host-n1"),
        ("node label", "n1", f"{slots.key('live', 'edge-1')} on host-n1"),
        ("node label", "n2", f"{slots.key('dead', 'edge-1')} on host-n2"),
        ("node label", "n2", f"{slots.key('kept', 'edge-2')} on host-n2"),
    ]
    assert [r for r in found if r[3][L.RUN] == "dead"] == [r for r in swarm_clean.labelled(client, "dead")]
    monkeypatch.setattr(swarm_clean, "reachable_managers", lambda: {"unix:///m.sock": FakeManager()})
    monkeypatch.setattr(swarm_clean, "labelled", lambda c, run_id=None: found)
    monkeypatch.setattr(swarm_clean, "_nodes_of", lambda url: [])
    removed = []
    monkeypatch.setattr(swarm_clean, "remove_run", lambda c, run_id, nodes=(): removed.append(run_id))
    assert swarm_clean.sweep() == [f"removed swarm run dead on unix:///m.sock (owner pid {2 ** 22 + 7}): 2 node label(s)"]
    assert removed == ["dead"]  # the live run's label and the kept stack's stay


@pytest.mark.parametrize("policy, failed_before, reason", [
    ("on-failure", 0, None),      # swarm restarts it: bring-up waits (a name another node had not published yet)
    ("on-failure", 2, "task failed: task: non-zero exit (1); nginx: host not found in upstream (3 failed task(s))"),
    ("none", 0, "task failed: task: non-zero exit (1); nginx: host not found in upstream"),
])
def test_a_failed_task_of_a_service_that_restarts_on_failure_gets_a_few_tries_at_bring_up(policy, failed_before, reason):
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    old = (now - datetime.timedelta(minutes=10)).isoformat()
    failed = {"Status": {"State": "failed", "Err": "task: non-zero exit (1)"}, "CreatedAt": now.isoformat(),
              "Version": {"Index": 10}}
    history = [{"Status": {"State": "failed"}, "CreatedAt": old, "Version": {"Index": 1}}] * 4  # killed long ago
    recent = [{"Status": {"State": "failed"}, "CreatedAt": now.isoformat(), "Version": {"Index": 5 + n}}
              for n in range(failed_before)]

    class Api:
        def tasks(self, filters=None):
            return [*history, *recent, failed]

    from types import SimpleNamespace

    backend = object.__new__(swarm.SwarmBackend)
    backend.stack = SimpleNamespace(spec=SimpleNamespace(services={"frontend": SimpleNamespace(restart=policy)}))  # type: ignore[assignment]
    backend.engines = type("Engines", (), {"manager": type("Client", (), {"api": Api()})()})()  # type: ignore[assignment]
    backend.services = {"frontend-1": "svc-1"}
    backend.log_tail = lambda name: "nginx: host not found in upstream"  # type: ignore[method-assign]
    assert backend.exit_reason("frontend-1") == reason
