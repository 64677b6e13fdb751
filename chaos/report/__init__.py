"""HTML report from a journal: ``write_report(journal, out)``.

```python
from chaos.report import write_report
path = write_report("journals/20261126-011422-9c769c.json")  # -> ...json -> .html beside it
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.errors import UsageError
from chaos.report.data import ReportData, extract
from chaos.report.html import render


def read_journal(path: str | Path) -> dict[str, Any]:
    """A journal as a dict; a missing or malformed file is one clear line."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such journal file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read: {err}") from None
    except ValueError as err:
        raise UsageError(f"{path}: not a journal (invalid JSON: {err})") from None
    if not isinstance(doc, dict) or "events" not in doc or "run_id" not in doc:
        raise UsageError(f"{path}: not a roomquake journal (no run_id/events)")
    return doc


def default_path(journal: str | Path) -> Path:
    return Path(journal).with_suffix(".html")


def render_journal(journal: dict[str, Any]) -> str:
    return render(extract(journal))


def write_report(journal: str | Path | dict[str, Any], out: str | Path | None = None) -> Path:
    """Write the report of a journal (path or dict); returns the HTML file's path."""
    if isinstance(journal, dict):
        if out is None:
            raise ValueError("out is required when the journal is given as a dict")
        doc = journal
    else:
        doc = read_journal(journal)
        out = out or default_path(journal)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render_journal(doc), encoding="utf-8")
    tmp.replace(target)
    return target


__all__ = ["ReportData", "default_path", "extract", "read_journal", "render_journal", "write_report"]
