"""Which resources clean removes, in what order, and how it reports trouble (fake engine)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import docker
import pytest

from chaos.clean import clean
from chaos.labels import KEEP, RunIdentity

LIVE = RunIdentity()  # this test process: alive
DEAD = RunIdentity(pid=2**22 + 17)  # beyond pid_max: never alive


@dataclass
class FakeResource:
    name: str
    labels: dict[str, str]
    log: list[str]
    fail: Exception | None = None
    id: str = field(default="")

    @property
    def attrs(self) -> dict[str, object]:
        return {"Labels": self.labels}

    def remove(self, **_: object) -> None:
        if self.fail is not None:
            raise self.fail
        self.log.append(self.name)


class FakeCollection:
    def __init__(self, items: list[FakeResource]) -> None:
        self.items = items

    def list(self, **_: object) -> list[FakeResource]:
        return self.items


class FakeApi:
    """The low-level container calls clean uses."""

    def __init__(self, containers: list[FakeResource], attached: dict[str, dict[str, object]] | None = None) -> None:
        self.by_id = {c.name: c for c in containers}
        self.attached = attached or {}  # network id -> the containers inspect shows on it

    def inspect_network(self, network_id: str) -> dict[str, object]:
        return {"Containers": self.attached.get(network_id, {})}

    def containers(self, **_: object) -> list[dict[str, object]]:
        return [{"Id": c.name, "Names": ["/" + c.name], "Labels": c.labels} for c in self.by_id.values()]

    def remove_container(self, container_id: str, **_: object) -> None:
        self.by_id[container_id].remove()


class FakeClient:
    def __init__(self, containers, networks, volumes) -> None:
        self.api = FakeApi(containers)
        self.networks, self.volumes = FakeCollection(networks), FakeCollection(volumes)


def test_only_dead_runs_go_and_containers_go_first() -> None:
    log: list[str] = []
    client = FakeClient(
        [FakeResource("c-dead", DEAD.labels(), log), FakeResource("c-live", LIVE.labels(), log)],
        [FakeResource("n-dead", DEAD.labels(), log), FakeResource("n-kept", {**DEAD.labels(), KEEP: "1"}, log)],
        [FakeResource("v-dead", DEAD.labels(), log)],
    )
    report = clean(client)  # type: ignore[arg-type]
    assert log == ["c-dead", "n-dead", "v-dead"]
    assert {r.name for r in report.kept} == {"c-live", "n-kept"}


def test_vanished_resources_count_as_removed_and_refusals_are_reported() -> None:
    log: list[str] = []
    gone = docker.errors.NotFound("gone")
    busy = docker.errors.APIError("conflict", explanation="network has active endpoints")
    client = FakeClient(
        [FakeResource("c-gone", DEAD.labels(), log, fail=gone)],
        [FakeResource("n-busy", DEAD.labels(), log, fail=busy, id="n-busy"),
         FakeResource("n-stuck", DEAD.labels(), log, fail=busy, id="n-stuck")],
        [],
    )
    client.api.attached["n-busy"] = {"c1": {"Name": "someone-else"}}  # a container is really on it
    report = clean(client)  # type: ignore[arg-type]
    assert [r.name for r in report.removed] == ["c-gone"]
    assert len(report.failed) == 1 and "n-busy" in report.failed[0][1]
    # Refused for endpoints while no container is on it: the engine's stuck endpoint, said apart.
    assert [r.name for r in report.stuck] == ["n-stuck"]


@pytest.mark.parametrize("include_live", [False, True])
def test_dry_run_touches_nothing(include_live: bool) -> None:
    log: list[str] = []
    client = FakeClient([FakeResource("c", LIVE.labels(), log)], [FakeResource("n", DEAD.labels(), log)], [])
    report = clean(client, dry_run=True, include_live=include_live)  # type: ignore[arg-type]
    assert log == []
    assert [r.name for r in report.removed] == (["c", "n"] if include_live else ["n"])


def test_live_run_is_ours() -> None:
    assert LIVE.pid == os.getpid()
