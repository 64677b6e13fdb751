"""Import a docker-compose project as a stack file, every service-to-service connection through the fault proxy.

    roomquake stack import docker-compose.yml -o stack.yaml

```python
from chaos.compose import import_compose
report = import_compose([Path("docker-compose.yml")], Path("stack.yaml"))
report.links        # ["web->db", "worker->redis", ...]
report.unrouted     # what stays direct, each with its reason
```

The importer reads Compose files itself (chaos.compose.source: versions 2.x,
3.x, none, and the legacy format; variables, ``.env``, ``env_file``,
overrides, ``extends``, anchors), so it needs no docker-compose; the tests
compare it with ``docker-compose config`` where that is installed.
Modules: source (files), variables, services (typed fields), connections
(addresses and their rewrite), health (healthchecks), convert (the stack),
write (the readable file), attach (a project already running).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from chaos.compose.source import ComposeFileError, find_files, load_project

__all__ = ["ComposeFileError", "ImportReport", "find_files", "import_compose"]


@dataclass(frozen=True)
class ImportReport:
    output: Path
    project: str
    services: list[str]
    links: list[str]
    unrouted: list[str]  # "client -> server (where): reason"
    dropped: list[str]


def import_compose(files: list[Path], output: Path, name: str | None = None, env_file: Path | None = None,
                   force: bool = False, environ: dict[str, str] | None = None) -> ImportReport:
    """Write the stack file for the Compose ``files`` to ``output``; checked as every stack file is before it is written."""
    from chaos.compose.convert import convert
    from chaos.compose.write import render
    from chaos.stack.errors import StackFileError
    from chaos.stack.spec import loads_stack

    output = Path(output)
    if output.exists() and not force:
        raise ComposeFileError(f"{output}: already exists; give --force to overwrite it")
    project = load_project(files, name=name, env_file=env_file, environ=environ)
    imported = convert(project, output.parent, environ)
    # Said from the output's folder, so the header does not depend on where the import ran.
    here = output.resolve().parent
    argv = ["roomquake", "stack", "import", *(os.path.relpath(Path(f).resolve(), here) for f in files), "-o", output.name]
    text = render(imported, shlex.join(argv))
    try:
        loads_stack(text, str(output))
    except StackFileError as err:  # a gap in the importer, never the user's fault: say so plainly
        raise ComposeFileError(f"the imported stack file does not validate: {err.one_line()}",
                               hint="please report it with the Compose file") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    stack = imported.stack
    return ImportReport(
        output=output, project=project.name,
        services=[n for n in stack["services"] if n != stack["proxy"]["service"]],
        links=list(stack["links"]),
        unrouted=[f"{u.client} -> {u.server} ({u.where}): {u.reason}" for u in imported.unrouted],
        dropped=list(imported.dropped),
    )
