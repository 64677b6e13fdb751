"""The small-first pass before Hypothesis's generation: every fault alone, then ordered pairs, and its shrink.

Hypothesis's generation mutates its last example, so in the few dozen examples a budget of minutes allows
it rarely draws a particular ordered pair (restart the backup host, then lose the primary). A bug that one
fault, or two in order, shows is found sooner by trying them all, plainest first:

- every atom alone, at 0 s for ``min_for``, its mildest parameters (the smallest schedule of that atom);
- then every ordered pair of two different atoms: the first at 0 s, the second at ``horizon`` (the latest
  start: the first fault's effect has had time to show), both for ``min_for``, in an order shuffled by the
  seed (a replay with the same seed tries them in the same order).

Schedules the search would not draw (``Schedule.loses_all`` unless ``total_loss``) are left out here too.
A failure this pass finds is already the smallest of its kind but for the pair's timing: ``smaller()``
gives the candidates the search then tries (each fault alone at its time, the second fault earlier).
Its failures are kept in the example database's directory (``systematic.json``), so a later search with
the same database replays them first, as Hypothesis does with its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chaos.explore.schedule import Limits, Planned, Schedule, allowed
from chaos.explore.space import FaultSpace

STORED = "systematic.json"


def schedules(space: FaultSpace, limits: Limits, seed: int) -> Iterator[Schedule]:
    """Singles in the space's order (plainest first), then ordered pairs in the seed's order."""
    redundant = dict(space.redundant)
    shortest, latest = round(limits.min_for * 10), round(limits.horizon * 10)
    for atom in space.atoms:
        single = Schedule((Planned(atom, 0, shortest),))
        if allowed(single, limits, redundant):
            yield single
    if limits.max_faults < 2:
        return
    pairs = [(a, b) for a in space.atoms for b in space.atoms if a.label != b.label]
    random.Random(seed).shuffle(pairs)
    for first, second in pairs:
        pair = Schedule((Planned(first, 0, shortest), Planned(second, latest, shortest)))
        if allowed(pair, limits, redundant):
            yield pair


def smaller(schedule: Schedule, limits: Limits, redundant: Mapping[str, int], alone: bool = True) -> Iterator[Schedule]:
    """Candidates smaller than a failing ``schedule`` of this pass, most reduced first: each fault alone at its
    own time (if ``alone``), then the later fault earlier (halving its start). A single at 0 s has none."""
    if alone and len(schedule.faults) > 1:
        for kept in schedule.ordered():
            yield Schedule((kept,))
    *earlier, last = schedule.ordered()
    floor = earlier[-1].at if earlier else 0  # the later fault stays the later one
    at = last.at
    while at > floor:
        at = max(floor, at // 2)
        moved = Schedule((*earlier, Planned(last.atom, at, last.for_, last.level)))
        if allowed(moved, limits, redundant):
            yield moved


def store(database: Path | None, schedule: Schedule) -> None:
    """Keep a failure of this pass, so that a search with the same database tries it first."""
    if database is None:
        return
    database.mkdir(parents=True, exist_ok=True)
    path = database / STORED
    kept = _read(path)
    entry = [{"atom": p.atom.label, "at": p.at, "for": p.for_, "level": p.level} for p in schedule.ordered()]
    if entry not in kept:
        kept.insert(0, entry)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept[:10], indent=1), encoding="utf-8")
    tmp.replace(path)


def _read(path: Path) -> list[list[dict[str, Any]]]:
    """The kept entries; none from a file that is missing or not ours to read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def stored(database: Path | None, space: FaultSpace) -> list[Schedule]:
    """The kept failures whose atoms are all still in ``space`` (a database is per space, but be strict)."""
    if database is None:
        return []
    atoms = {a.label: a for a in space.atoms}
    found: list[Schedule] = []
    for entry in _read(database / STORED):
        try:
            faults = tuple(Planned(atoms[str(p["atom"])], int(p["at"]), int(p["for"]), int(p["level"])) for p in entry)
        except (KeyError, TypeError, ValueError):
            continue
        if faults:
            found.append(Schedule(faults))
    return found
