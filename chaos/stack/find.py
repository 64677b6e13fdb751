"""Which stack file a name or a path means, from any directory.

An experiment's ``stack:`` and ``roomquake stack up --file`` take either a
path to a stack file or a stack's name (``audio-room``). A name is looked up
in ``docker/stack.yaml`` of the current folder, then of the experiment's
project (the folder above the experiment's), then among the stacks roomquake
ships (``chaos.shipped``), so the reference stack resolves wherever
roomquake is installed.
"""

from __future__ import annotations

from pathlib import Path

from chaos import shipped, yamldoc
from chaos.stack.errors import StackFileError


def looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml", ".json")) or "/" in ref


def _name_of(path: Path) -> object:
    """The ``name:`` a stack file declares (only parsed here; validated when loaded)."""
    try:
        data = yamldoc.read_document(path, "stack file").data
    except yamldoc.SyntaxProblem as err:
        from chaos.stack.spec import syntax_line

        raise StackFileError(syntax_line(err, str(path))) from None
    return data.get("name") if isinstance(data, dict) else None


def candidates(base: Path | None = None) -> list[Path]:
    """Stack files a name is looked up in, in order, without duplicates."""
    found: list[Path] = []
    places = [Path.cwd() / "docker" / "stack.yaml"]
    if base is not None:
        places.append(base.parent / "docker" / "stack.yaml")
    places.append(shipped.stack_file())
    for place in places:
        if place.is_file() and place.resolve() not in found:
            found.append(place.resolve())
    return found


def find_stack(ref: str, base: Path | None = None) -> Path:
    """The stack file ``ref`` names: a path (next to ``base``, then in the current folder) or a stack name."""
    if looks_like_path(ref):
        for folder in (base, Path.cwd()):
            if folder is not None and (folder / ref).is_file():
                return folder / ref
        raise StackFileError(f"stack file {ref!r} not found (looked next to the experiment and in the current folder)")
    for path in candidates(base):
        if _name_of(path) == ref:
            return path
    raise StackFileError(f"no stack named {ref!r}; give a path to its stack file, e.g. stack: docker/stack.yaml "
                         f"(roomquake ships the stack {shipped.REFERENCE_STACK!r})")
