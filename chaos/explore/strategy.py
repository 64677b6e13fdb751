"""Hypothesis strategies for fault schedules (separate from the engine that runs them, as Hypothesis does).

Every choice shrinks towards the simple: fewer faults (a shorter list),
earlier (``at`` to 0), shorter (``for`` to the minimum), milder (parameter
choice 0) and plainer (the first atoms of the space: see chaos.explore.space).
"""

from __future__ import annotations

from hypothesis import strategies as st

from chaos.explore.schedule import Limits, Planned, Schedule, allowed
from chaos.explore.space import Atom, FaultSpace


def planned(atoms: tuple[Atom, ...], limits: Limits) -> st.SearchStrategy[Planned]:
    tenths = round(limits.horizon * 10)
    shortest, longest = round(limits.min_for * 10), round(limits.max_for * 10)

    @st.composite
    def one(draw: st.DrawFn) -> Planned:
        atom = draw(st.sampled_from(atoms))
        level = draw(st.integers(0, len(atom.params) - 1))
        return Planned(atom, draw(st.integers(0, tenths)), draw(st.integers(shortest, longest)), level)

    return one()


def schedules(space: FaultSpace, limits: Limits) -> st.SearchStrategy[Schedule]:
    """Schedules of 1 to ``limits.max_faults`` faults drawn from ``space``.

    Unless ``limits.total_loss``, a schedule leaves at least one instance of every service that has several
    up at every instant: losing all of them at once shows only that they are all gone (a room without any
    host ends, as it should), and such schedules would hide the failures worth finding. Hypothesis shrinks
    within the same rule.
    """
    drawn = st.lists(planned(space.atoms, limits), min_size=1, max_size=limits.max_faults).map(
        lambda faults: Schedule(tuple(faults)))
    redundant = dict(space.redundant)
    if limits.total_loss or not redundant:
        return drawn
    return drawn.filter(lambda schedule: allowed(schedule, limits, redundant))
