"""Attaching to a running Compose project, against a fake engine: names, the unknown-project line, pause retries."""

from __future__ import annotations

import docker
import pytest

from chaos.compose.attach import ComposeBackend, project_containers, project_of
from chaos.stack.errors import StackError


class FakeContainer:
    def __init__(self, project: str, service: str, number: int, oneoff: bool = False, freezes_failing: int = 0) -> None:
        self.labels = {"com.docker.compose.project": project, "com.docker.compose.service": service,
                       "com.docker.compose.container-number": str(number),
                       "com.docker.compose.oneoff": "True" if oneoff else "False"}
        self.name = f"{project}_{service}_{number}"
        self.status = "running"
        self.freezes_failing = freezes_failing

    def pause(self) -> None:
        if self.freezes_failing:
            self.freezes_failing -= 1
            raise docker.errors.APIError("500 Server Error: OCI runtime pause failed: unable to freeze: unknown")
        self.status = "paused"


class FakeContainers:
    def __init__(self, found: list[FakeContainer]) -> None:
        self.found = found

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:  # noqa: A002 - the SDK's name
        want = (filters or {}).get("label", "")
        if "=" in want:
            key, value = want.split("=", 1)
            return [c for c in self.found if c.labels.get(key) == value]
        return [c for c in self.found if want in c.labels]


class FakeClient:
    def __init__(self, found: list[FakeContainer]) -> None:
        self.containers = FakeContainers(found)


def test_containers_are_named_as_roomquake_names_instances_one_offs_left_out() -> None:
    client = FakeClient([FakeContainer("shop", "worker", 2), FakeContainer("shop", "worker", 1),
                         FakeContainer("shop", "web", 1), FakeContainer("shop", "web", 3, oneoff=True),
                         FakeContainer("other", "web", 1)])
    assert sorted(project_containers(client, "shop")) == ["web-1", "worker-1", "worker-2"]  # type: ignore[arg-type]


def test_an_unknown_project_is_one_line_naming_the_running_ones() -> None:
    client = FakeClient([FakeContainer("shop", "web", 1), FakeContainer("tasks", "api", 1)])
    with pytest.raises(StackError) as err:
        project_containers(client, "shp")  # type: ignore[arg-type]
    assert err.value.one_line() == ("no Compose project 'shp' has containers on this engine (running projects: shop, "
                                    "tasks) (start it with docker-compose -p shp up -d)")


def test_a_pause_the_freezer_gives_up_on_is_tried_again_a_bounded_number_of_times() -> None:
    flaky = FakeContainer("shop", "db", 1, freezes_failing=2)
    backend = ComposeBackend(FakeClient([flaky]), "shop", {"db-1": flaky}, {"db-1": 5432})  # type: ignore[arg-type]
    backend.pause("db-1")
    assert flaky.status == "paused"
    stuck = FakeContainer("shop", "db", 1, freezes_failing=99)
    backend = ComposeBackend(FakeClient([stuck]), "shop", {"db-1": stuck}, {"db-1": 5432})  # type: ignore[arg-type]
    with pytest.raises(StackError, match="pausing db-1 .*unable to freeze"):
        backend.pause("db-1")


def test_project_of() -> None:
    assert project_of("compose:shop") == "shop"
    assert project_of("20261130-061407-e85b0c") is None and project_of(None) is None


def test_a_stack_without_rooms_gets_no_empty_room_in_the_relaunch_line() -> None:
    from chaos.run import events as ev
    from chaos.run.progress import line_for

    assert line_for(ev.RelaunchesAudited(room="", relaunches=[], unexpected=None)) == (
        "relaunches: not known (the stack declares no relaunch records)")
