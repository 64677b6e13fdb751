"""Every broken file in fixtures/invalid gives exactly the expected lines, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiment.stackcheck import validate_with_stack as validate_file

ROOT = Path(__file__).resolve().parents[3]
CORPUS = sorted(p for p in (ROOT / "fixtures" / "invalid").iterdir() if p.suffix in (".yaml", ".json"))


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 10


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_invalid_file_reports_expected_lines(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    relative = path.relative_to(ROOT)
    experiment, problems = validate_file(relative)
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert experiment is None
    assert [str(p) for p in problems] == expected
    for line in expected:  # the promised shape: file:line:col: field: message
        file, line_no, col, rest = line.split(":", 3)
        assert file == str(relative) and int(line_no) >= 1 and int(col) >= 1
        assert rest.startswith(" ") and ": " in rest[1:]
