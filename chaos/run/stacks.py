"""Open the stack an experiment runs on: bring one up (torn down after) or attach (left up)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.errors import UsageError

if TYPE_CHECKING:
    from chaos.run.runner import Runner

# Where a stack named in an experiment (``stack: audio-room``) is looked for.
REPO_ROOT = Path(__file__).resolve().parents[2]


def stack_file(name: str, experiment_dir: Path) -> Path:
    """``stack:`` is a path (relative to the experiment file, then the cwd) or a stack name."""
    looks_like_path = name.endswith((".yaml", ".yml")) or "/" in name
    if looks_like_path:
        for base in (experiment_dir, Path.cwd()):
            if (base / name).is_file():
                return base / name
        raise UsageError(f"stack file {name!r} not found (looked next to the experiment and in {Path.cwd()})")
    from chaos.stack import load_stack

    seen = []
    for candidate in (Path.cwd() / "docker" / "stack.yaml", experiment_dir.parent / "docker" / "stack.yaml",
                      REPO_ROOT / "docker" / "stack.yaml"):
        if candidate.is_file() and candidate.resolve() not in seen:
            seen.append(candidate.resolve())
            if load_stack(candidate).name == name:
                return candidate
    raise UsageError(f"no stack named {name!r}; give a path to its stack file, e.g. stack: docker/stack.yaml")


def _sweep_leftovers() -> None:
    """Remove what runs killed with SIGKILL left behind (containers, networks of dead owners)."""
    try:
        from chaos import clean
    except ImportError:
        return
    sweep = getattr(clean, "sweep", None) or getattr(clean, "clean", None)
    if callable(sweep):
        with contextlib.suppress(Exception):
            sweep()


@contextlib.contextmanager
def _brought_up(runner: Runner) -> Iterator[Any]:
    from chaos.stack import start_stack

    exp = runner.experiment
    path = stack_file(exp.stack, runner.file.parent)
    backend = runner.options.backend
    if backend is None:
        from chaos.stack import default_backend

        backend = default_backend()
    if backend == "docker":
        _sweep_leftovers()
    stack = start_stack(path, backend=backend, scale=exp.scale, profile=exp.profile, env=exp.env or None,
                        identity=runner.identity)
    try:
        yield stack
    finally:
        stack.down()


def open_stack(runner: Runner) -> Any:
    if runner.options.attach:
        from chaos.stack import attach

        return attach(runner.options.attach)
    return _brought_up(runner)
