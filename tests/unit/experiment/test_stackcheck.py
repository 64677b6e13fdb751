"""Experiments checked against the reference stack file, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiment.stackcheck import check_against_stack, stack_file, validate_with_stack
from chaos.experiment.validate import validate_text
from chaos.stack import load_stack

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_stack(ROOT / "docker" / "stack.yaml").spec


def problems(body: str, backend: str | None = None) -> list[str]:
    experiment, found = validate_text("title: t\n" + body, "x.yaml")
    assert experiment is not None, [str(p) for p in found]
    return [f"{p.field}: {p.message}" for p in check_against_stack(experiment, SPEC, None, backend)]


def test_container_only_faults_are_refused_for_local_processes() -> None:
    body = "method:\n  - {fault: disconnect, target: {service: edge, count: 1}}\n  - {fault: squeeze, target: {service: edge}, cpus: 0.2}\n"
    assert problems(body, "docker") == []
    assert problems(body, "swarm") == []
    assert problems(body, "local") == [
        "method[0].fault: disconnect needs containers: run with --backend docker or swarm",
        "method[1].fault: squeeze needs containers: run with --backend docker or swarm",
    ]


def test_instance_links_and_scale() -> None:
    assert problems("scale: {edge: 4}\nmethod:\n  - {fault: down, link: crowd->edge-4}\n") == []
    assert problems("method:\n  - {fault: down, link: crowd->edge-4}\n") == [
        "method[0].link: no link 'crowd->edge-4' in stack audio-room; did you mean 'crowd->edge'?"
    ]
    assert problems("method:\n  - {fault: kill, target: {select: {name: hostng, room: launch}}}\n") == [
        "method[0].target.select.name: no selector 'hostng' in stack audio-room; did you mean 'hosting'?"
    ]


def test_stack_is_found_by_name_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert stack_file("audio-room", tmp_path).resolve() == (ROOT / "docker" / "stack.yaml").resolve()
    exp = tmp_path / "x.yaml"
    exp.write_text(f"title: t\nstack: {ROOT / 'docker' / 'stack.yaml'}\n")
    assert validate_with_stack(exp)[1] == []
    exp.write_text("title: t\nstack: other-stack\n")
    assert [str(p) for p in validate_with_stack(exp)[1]] == [
        f"{exp}:2:8: stack: no stack named 'other-stack'; give a path to its stack file, e.g. stack: docker/stack.yaml "
        "(roomquake ships the stack 'audio-room')"
    ]


def test_history_assertions_need_a_stack_that_declares_histories() -> None:
    assert problems("history: {no_split_brain: true}\n") == []
    bare = SPEC.model_copy(update={"history": None})
    experiment, _ = validate_text("title: t\nhistory: {no_split_brain: true}\n", "x.yaml")
    assert [f"{p.field}: {p.message}" for p in check_against_stack(experiment, bare)] == [
        "history: stack audio-room declares no history.listeners source: nothing to check listeners' histories on"]
