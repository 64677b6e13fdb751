"""Hostile files (fixtures/hostile) are refused with one located line, exit 2, no traceback, bounded work.

Bounds (tests/fuzzing.py) are CPU seconds and traced memory with wide
margins: they catch a blow-up such as an alias bomb's expansion, not a slow machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from roomquake_fuzzing import bounded, one_located_line

from chaos import yamldoc
from chaos.cli.checking import check
from chaos.stack.errors import StackFileError
from chaos.stack.spec import load_stack

ROOT = Path(__file__).resolve().parents[3]
HOSTILE = sorted(p for p in (ROOT / "fixtures" / "hostile").iterdir() if p.suffix in (".yaml", ".json"))


def test_corpus_covers_the_known_attacks() -> None:
    names = {p.name for p in HOSTILE}
    assert {"billion-laughs.yaml", "custom-tag.yaml", "python-object.yaml", "tagged-scalar.yaml"} <= names


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_experiment_file_is_refused(path: Path) -> None:
    checked = bounded(check, path)
    assert checked.experiment is None and checked.problems
    for problem in checked.problems:
        one_located_line(str(problem))


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_stack_file_is_refused(path: Path) -> None:
    with pytest.raises(StackFileError) as caught:
        bounded(load_stack, path)
    one_located_line(str(caught.value).split(" (and ", 1)[0])


def test_files_over_the_size_limit_are_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    step = "  - {id: k%d, at: 1s, fault: kill, target: {service: edge, hosting: launch}}\n"
    big.write_text("title: t\nmethod:\n" + "".join(step % i for i in range(4000)))  # ~300 KiB, like the 5.7 MB one
    assert big.stat().st_size > yamldoc.MAX_BYTES
    checked = bounded(check, big)
    assert [str(p) for p in checked.problems] == [f"{big}: file: {yamldoc.too_big(big.stat().st_size)}"]


def test_a_file_just_under_the_limit_is_validated(tmp_path: Path) -> None:
    near = tmp_path / "near.yaml"  # long descriptions: near the size limit, under the value limit
    step = "  - {id: k%d, at: 1s, fault: kill, target: {service: edge}, description: " + "x" * 160 + "}\n"
    body = "title: t\nmethod:\n"
    count = (yamldoc.MAX_BYTES - len(body)) // len(step % 9999)
    assert count * 9 < yamldoc.MAX_NODES
    near.write_text(body + "".join(step % i for i in range(count)))
    assert near.stat().st_size <= yamldoc.MAX_BYTES
    checked = bounded(check, near)
    assert checked.experiment is not None, checked.problems[:3]
    assert len(checked.experiment.method) == count


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    import os

    os.mkfifo(fifo)  # reading it would block forever
    assert [str(p) for p in check(fifo).problems] == [f"{fifo}: file: is not a regular file, not an experiment file"]
    assert [str(p) for p in check("/dev/zero").problems] == ["/dev/zero: file: is not a regular file, not an experiment file"]


def test_cli_exits_2_with_one_line_per_hostile_file() -> None:
    done = subprocess.run([sys.executable, "-m", "chaos", "validate", *map(str, HOSTILE)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(HOSTILE), lines
    for line in lines:
        one_located_line(line)
