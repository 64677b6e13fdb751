"""``roomquake explore``: a Hypothesis search over fault schedules that shrinks a failure into an experiment file.

Modules, one job each: ``space`` (the faults the stack file and the fault
catalogue allow), ``schedule`` (a schedule and its method), ``strategy``
(Hypothesis strategies), ``base`` (the base experiment and the experiments
made from it), ``trial`` (one run on the pooled stack), ``search`` (the
Hypothesis engine with a time budget), ``confirm`` (reruns: found or flaky),
``writer`` (the experiment file), ``session`` (all of it, with a journal),
``display`` (the progress display).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos.explore.session import ExploreReport, explore

__all__ = ["ExploreReport", "explore"]


def __getattr__(name: str) -> Any:  # loaded on first use: Hypothesis and the runner are not cheap
    if name in __all__:
        from chaos.explore import session

        return getattr(session, name)
    raise AttributeError(name)
