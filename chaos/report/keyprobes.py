"""Key probes: the series a report charts and a game-day dashboard shows.

The toolkit stays generic: a role is found by the probe's *name*, among the
probes the stack file declares (``crowd.connected``, ``crowd.join_latency_p95``
in the reference stack). A stack whose names differ simply gets fewer panels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from chaos.experiment import model as m


@dataclass(frozen=True)
class Role:
    key: str
    title: str
    patterns: tuple[str, ...]  # tried in order; the first that matches any name wins

    def pick(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        for pattern in self.patterns:
            found = [n for n in names if re.search(pattern, n)]
            if found:
                return found
        return []


LISTENERS = Role("listeners", "Listeners connected", (r"(^|\.)connected($|\{)", r"connected_ratio($|\{)", r"listeners($|\{)"))
JOIN_LATENCY = Role("join_latency", "Join latency (s)", (r"join_latency",))
FRAME_GAPS = Role("frame_gaps", "Frame gaps (s)", (r"frame_gap",))
RELAUNCHES = Role("relaunches", "Relaunches", (r"(^|\.)relaunches($|\{)",))
CHARTED = (LISTENERS, JOIN_LATENCY, FRAME_GAPS)
ROLES = (*CHARTED, RELAUNCHES)


def base_name(key: str) -> str:
    """``room.relaunches{room=launch}`` -> ``room.relaunches``."""
    return key.split("{", 1)[0]


def declared_probes(experiment: m.Experiment, file: str | Path) -> list[str]:
    """Probe names the experiment's stack file declares ([] when the stack cannot be read)."""
    from chaos.errors import RoomquakeError
    from chaos.experiment.stackcheck import stack_file
    from chaos.stack import load_stack

    try:
        return sorted(load_stack(stack_file(experiment.stack, Path(file).parent)).spec.probes)
    except (RoomquakeError, OSError):
        return []


def key_probes(declared: Iterable[str]) -> list[str]:
    """One stack probe per role (the first pattern that matches), in role order."""
    names = sorted(declared)
    chosen: list[str] = []
    for role in ROLES:
        picked = role.pick(names)
        if picked:
            chosen.append(picked[0])
    return chosen


def with_key_probes(experiment: m.Experiment, file: str | Path) -> m.Experiment:
    """A copy whose ``observe`` also samples the key probes, so the report can chart them."""
    have = {ref for ref in experiment.observe if isinstance(ref, str)}
    extra = [name for name in key_probes(declared_probes(experiment, file)) if name not in have]
    if not extra:
        return experiment
    return experiment.model_copy(update={"observe": [*experiment.observe, *extra]})


def numeric(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None
