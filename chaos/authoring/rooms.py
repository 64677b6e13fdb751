"""Give an experiment its own room, for a stack that already served another experiment.

The reference stack keeps a room and its history (relaunch count, host
account, edge) for as long as it runs, and nothing in it ends a room. An
experiment that runs on a reused stack therefore gets a fresh room name
(``launch`` -> ``launch-2``): every room-scoped probe, selector and load
action then sees a room as new as on a fresh stack.
"""

from __future__ import annotations

from typing import Any

from chaos.experiment import model as m

ROOM_KEYS = ("room", "hosting")


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: (new if k in ROOM_KEYS and v == old else _rename(v, old, new)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    return value


def room_of(experiment: m.Experiment, default: str | None = None) -> str | None:
    """The experiment's room: its load's, else ``default`` (the stack file's load start action's room)."""
    if experiment.load is not None and experiment.load.room is not None:
        return experiment.load.room
    return default


def in_room(experiment: m.Experiment, room: str, default: str | None = None) -> m.Experiment:
    """The same experiment, with every reference to its load's room pointing at ``room``."""
    old = room_of(experiment, default)
    if room == old:
        return experiment
    data = experiment.model_dump(mode="json", by_alias=True, exclude_none=True)
    if old is not None:
        data = _rename(data, old, room)
    if experiment.load is not None:
        data["load"]["room"] = room  # named even when the file leaves it to the stack's default
    return m.Experiment.model_validate(data)
