"""The method as a static plan: when each step starts and ends, in method time.

A step starts at its ``at`` or, without one, when the previous step ends;
a ``parallel`` group's members start together (their own ``at`` counts from
the group's start). A fault ends after its ``for`` (or stays until the run's
rollback); a check ends when its deadline or window closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.experiment import model as m


@dataclass(frozen=True)
class Planned:
    id: str
    step: m.FaultBase | m.CheckStep
    start: float
    end: float  # faults without `for`: == start (they stay until the final rollback)

    @property
    def is_fault(self) -> bool:
        return isinstance(self.step, m.FaultBase)

    @property
    def fault(self) -> m.FaultBase:
        """The step, which is a fault (``is_fault``)."""
        if not isinstance(self.step, m.FaultBase):
            raise TypeError(f"step {self.id} is a check, not a fault")
        return self.step

    @property
    def check(self) -> m.CheckStep:
        """The step, which is a check (not ``is_fault``)."""
        if not isinstance(self.step, m.CheckStep):
            raise TypeError(f"step {self.id} is a fault, not a check")
        return self.step


def step_id(step: m.StepBase, path: str) -> str:
    if step.id:
        return step.id
    if isinstance(step, m.FaultBase):
        return f"{path}:{step.fault}"
    if isinstance(step, m.CheckStep):
        return f"{path}:{step.label()}"
    return path


def _length(step: m.FaultBase | m.CheckStep) -> float:
    if isinstance(step, m.FaultBase):
        return step.for_ or 0.0
    return step.within or step.throughout or 0.0


def plan(method: list[m.Step]) -> list[Planned]:
    return _plan(method)[0]


def length(method: list[m.Step]) -> float:
    """When the method ends, in method time: its last step's end, waits included."""
    steps, cursor = _plan(method)
    return max([cursor, *(p.end for p in steps)])


def _plan(method: list[m.Step]) -> tuple[list[Planned], float]:
    out: list[Planned] = []
    cursor = 0.0
    latest = 0.0
    for i, step in enumerate(method):
        start = step.at if step.at is not None else cursor
        if isinstance(step, m.WaitStep):
            cursor = start + step.wait
            latest = max(latest, cursor)
            continue
        if isinstance(step, m.ParallelStep):
            end = start
            for j, sub in enumerate(step.parallel):
                s = start + (sub.at or 0.0)
                out.append(Planned(step_id(sub, f"method[{i}].parallel[{j}]"), sub, s, s + _length(sub)))
                end = max(end, s + _length(sub))
            cursor = end
            continue
        out.append(Planned(step_id(step, f"method[{i}]"), step, start, start + _length(step)))
        cursor = start + _length(step)
    return _resolve_during(out, latest), latest


def _resolve_during(steps: list[Planned], waits_end: float) -> list[Planned]:
    """A check ``during: fault-id`` takes that fault's window (to the method's end if it has no ``for``)."""
    by_id = {p.id: p for p in steps if p.is_fault}
    method_end = max([waits_end, *(p.end for p in steps)])
    out = []
    for p in steps:
        if isinstance(p.step, m.CheckStep) and p.step.during:
            fault = by_id[p.step.during]
            end = fault.end if fault.end > fault.start else max(method_end, fault.start)
            p = Planned(p.id, p.step, fault.start, end)
        out.append(p)
    return out

