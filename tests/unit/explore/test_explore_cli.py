"""``roomquake explore``: listed and lazy; bad input is one line, exit 2, nothing started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from roomquake_testutil import run_cli


ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "fixtures" / "explore" / "edge-slot-leak.yaml"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(argv, capsys)


def test_the_verb_is_listed_and_its_module_loads_neither_hypothesis_nor_the_runner():
    probe = ("import sys, chaos.cli.main as m, chaos.cli.explore; "
             "print('explore' in m.VERBS, 'hypothesis' in sys.modules, 'chaos.run.runner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False"]


@pytest.mark.parametrize("argv, text", [
    (["explore", "missing.yaml", "--budget", "1m", "--backend", "local"], "missing.yaml"),
    (["explore", str(BASE), "--budget", "soon", "--backend", "local"], "'soon' is not a duration"),
    (["explore", str(BASE), "--budget", "1m", "--backend", "local", "--faults", "explode"],
     "explore: unknown fault kind explode"),
    (["explore", str(BASE), "--budget", "1m", "--backend", "local", "--services", "nothing"],
     "explore: no service nothing in stack audio-room"),
    (["explore", str(BASE), "--budget", "1m", "--backend", "local", "--min-for", "5s", "--max-for", "2s"],
     "5s is longer than --max-for (2s)"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], text: str, tmp_path: Path, monkeypatch,
                                          capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and text in err and "Traceback" not in err, err
    problems = [line for line in err.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert len(problems) <= 2  # the problem (and the summary); a bad flag also gets click's usage lines
    assert not (tmp_path / "journals").exists()  # nothing started, nothing written


def test_a_base_whose_checks_refer_to_its_method_is_refused_before_anything_starts(tmp_path: Path, monkeypatch,
                                                                                 capsys: pytest.CaptureFixture[str]):
    text = BASE.read_text().replace("stack: audio-room", f"stack: {ROOT / 'docker' / 'stack.yaml'}")
    text = text.replace("undisturbed: pass}", "undisturbed: pass, after: k}")
    text += "method:\n  - {id: k, fault: kill, target: {service: edge}}\n"
    (tmp_path / "base.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["explore", "base.yaml", "--budget", "1m", "--backend", "local"], capsys)
    assert code == 2 and "recovery[0].after" in err and "explore replaces the base's method" in err, err
