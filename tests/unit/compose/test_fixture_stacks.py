"""The fixture projects' stack files are what the importer makes of their Compose files, and experiments are
checked against them (names with did-you-mean; what an attached Compose project cannot take)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.compose.convert import convert
from chaos.compose.source import load_project
from chaos.compose.write import render
from chaos.experiment.stackcheck import ATTACHED_COMPOSE, check_against_stack
from chaos.experiment.validate import validate_text
from chaos.stack import load_stack

ROOT = Path(__file__).resolve().parents[3]
PROJECTS = ROOT / "fixtures" / "compose"


@pytest.mark.parametrize("project", ["shop", "tasks"])
def test_stack_file_is_what_the_import_makes(project: str) -> None:
    folder = PROJECTS / project
    text = render(convert(load_project([folder / "docker-compose.yml"], environ={}), folder, {}), "CMD")
    written = (folder / "stack.yaml").read_text()
    # the header's first lines hold the command line (wrapped); everything from the next line on must match

    def body(lines: str) -> list[str]:
        rows = lines.splitlines()
        return rows[next(i for i, row in enumerate(rows) if row.startswith("# Edit it freely")):]

    assert body(text) == body(written), f"re-import {project}: roomquake stack import --force"


def problems(stack: str, body: str, backend: str | None = None) -> list[str]:
    spec = load_stack(PROJECTS / stack / "stack.yaml").spec
    experiment, found = validate_text("title: t\n" + body, "x.yaml")
    assert experiment is not None, [str(p) for p in found]
    return [f"{p.field}: {p.message}" for p in check_against_stack(experiment, spec, None, backend)]


def test_names_are_checked_against_the_imported_stack_with_did_you_mean() -> None:
    body = """\
steady_state: [{probe: worker.runing, expect: 1}]
method:
  - {fault: latency, link: web->dbb, latency: 300ms}
  - {fault: kill, target: {service: wrker}}
  - {fault: pause, target: {instance: db-2}}
"""
    assert problems("shop", body) == [
        "steady_state[0].probe: no probe 'worker.runing' in stack shop; did you mean 'worker.running'?",
        "method[0].link: no link 'web->dbb' in stack shop; did you mean 'web->db'?",
        "method[1].target.service: no service 'wrker' in stack shop; did you mean 'worker'?",
        "method[2].target.instance: no instance 'db-2' at this scale; did you mean 'db-1'?",
    ]
    ok = "method:\n  - {fault: latency, link: api->postgres, latency: 300ms}\n  - {fault: kill, target: {service: worker}}\n"
    assert problems("tasks", ok) == []


def test_experiments_of_the_fixture_projects_are_valid() -> None:
    from chaos.experiment.stackcheck import validate_with_stack

    files = sorted(PROJECTS.glob("*/experiments/*.yaml"))
    assert len(files) >= 6
    for path in files:
        experiment, found = validate_with_stack(path, "docker")
        assert experiment is not None, [str(p) for p in found]


def test_an_attached_compose_project_refuses_link_faults_scale_and_env_with_a_hint() -> None:
    body = """\
scale: {worker: 3}
method:
  - {fault: latency, link: api->postgres, latency: 300ms}
  - {fault: kill, target: {service: worker}}
  - {fault: squeeze, target: {service: api}, cpus: 0.2}
  - {fault: disconnect, target: {service: api}}
"""
    found = problems("tasks", body, ATTACHED_COMPOSE)
    assert len(found) == 2, found
    assert found[0].startswith("scale: an attached Compose project runs as it is")
    assert found[1] == ("method[0].link: latency on api->postgres: a running Compose project has no fault proxy on its "
                        "connections: import it (roomquake stack import docker-compose.yml -o stack.yaml) and run the "
                        "experiment on that")
    assert problems("tasks", "method:\n  - {fault: pause, target: {service: postgres}}\n", ATTACHED_COMPOSE) == []


def test_the_local_backend_refuses_an_imported_stack_in_one_line_before_anything_starts() -> None:
    from chaos.stack import start_stack
    from chaos.stack.errors import StackFileError

    with pytest.raises(StackFileError) as refused:
        start_stack(PROJECTS / "tasks" / "stack.yaml", backend="local")
    assert str(refused.value) == ("the local backend cannot run service 'frontend' of stack tasks: its image is "
                                  "built from a build context; use --backend docker or swarm")
