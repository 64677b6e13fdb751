"""Reading the histories a stack declares (``history:`` in the stack file) and judging an experiment's
``history:`` assertions on them. The checking itself is chaos.checkers.history (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chaos.checkers import history as checker
from chaos.experiment import model as m
from chaos.experiment.durations import format_duration
from chaos.probes import fill
from chaos.stack.probes import dig, get_json
from chaos.run.checks import format_value

if TYPE_CHECKING:
    from chaos.stack.contract import LiveStack
    from chaos.stack.spec import HttpSource

FETCH_TIMEOUT_S = 15.0  # a history document of thousands of listeners takes a while on a busy machine


@dataclass
class Collected:
    room: str
    report: checker.RoomHistory | None = None
    relaunch_records: list[dict[str, Any]] | None = None  # None: the stack declares no source, or none answered
    instances: list[str] = field(default_factory=list)  # load instances whose histories were read
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room, "instances": self.instances, "errors": self.errors,
                "report": self.report.to_json() if self.report else None,
                "relaunch_records": self.relaunch_records}


Source = Literal["listeners", "relaunches"]


def _source(stack: LiveStack, part: Source) -> HttpSource | None:
    history = stack.spec.history
    if history is None:
        return None
    return history.listeners if part == "listeners" else history.relaunches


def declared(stack: LiveStack, part: Source = "listeners") -> bool:
    return _source(stack, part) is not None


def _running(stack: LiveStack, service: str) -> list[str]:
    return [i.name for i in stack.instances(service) if i.state == "running"]


def fetch_relaunches(stack: LiveStack, room: str) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """The system's relaunch records for ``room`` (first instance that answers), or None."""
    source = _source(stack, "relaunches")
    if source is None:
        return None, []
    errors = []
    for name in _running(stack, source.service):
        host, port = stack.address(name)
        path = fill(source.path, {"room": room})
        doc = get_json(host, port, path, timeout=FETCH_TIMEOUT_S)
        if doc is None:
            errors.append(f"{name}{path}: no answer")
            continue
        records = dig(doc, source.field) if source.field else doc
        if isinstance(records, list):
            return [r for r in records if isinstance(r, dict)], errors
        errors.append(f"{name}{path}: {source.field or 'the body'} is not a list")
    return None, errors or [f"no running {source.service} instance to ask for relaunch records"]


def collect(stack: LiveStack, room: str, back_within: list[float]) -> Collected:
    """Read every load instance's listener histories and the relaunch records, and check them."""
    out = Collected(room)
    out.relaunch_records, errors = fetch_relaunches(stack, room)
    out.errors += errors
    source = _source(stack, "listeners")
    if source is None:
        return out
    documents = []
    for name in _running(stack, source.service):
        host, port = stack.address(name)
        path = fill(source.path, {"room": room})
        doc = get_json(host, port, path, timeout=FETCH_TIMEOUT_S)
        doc = dig(doc, source.field) if source.field and doc is not None else doc
        if not isinstance(doc, dict):
            out.errors.append(f"{name}{path}: no history document")
            continue
        documents.append(doc)
        out.instances.append(name)
    if documents:
        records = {room: out.relaunch_records} if out.relaunch_records is not None else None
        out.report = checker.check(documents, records, rooms=[room], back_within=back_within)[room]
    return out


@dataclass(frozen=True)
class Judged:
    check: str  # e.g. history.max_gap_p99
    key: str
    expect: str
    ok: bool
    value: Any
    message: str


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}s"


def judge(spec: m.HistoryCheck, collected: Collected) -> list[Judged]:
    """One result per asserted key (pure: reads only ``collected``)."""
    out: list[Judged] = []
    report = collected.report

    def add(key: str, expect: Any, ok: bool, value: Any, detail: str) -> None:
        label = f"{spec.id}.{key}"
        out.append(Judged(label, key, str(expect), ok, value, f"{label}: {detail}"))

    if report is None:
        why = "; ".join(collected.errors) or "no history was read"
        for key in spec.asserted():
            add(key, getattr(spec, key), False, None, f"no listener history of room {collected.room} to judge ({why})")
        return out
    where = f"room {report.room}, {report.listeners} listeners"
    if report.truncated or report.dropped:
        where += f"; {report.truncated} histories capped, {report.dropped} listeners dropped by the load instances"
    if spec.no_split_brain:
        shown = ", ".join(f"{s.listener} heard gen {s.generation} after gen {s.after} at {s.t:.2f}" for s in report.split_brain[:3])
        add("no_split_brain", "no split brain", report.split_brain_count == 0, report.split_brain_count,
            "no frame of an older generation after a newer one" + f" ({where})" if report.split_brain_count == 0 else
            f"{report.split_brain_count} frames of an older generation after a newer one: {shown} ({where})")
    if spec.never_heard_relaunch is not None:
        value = float(report.never_heard_count)
        last = report.relaunches[-1].generation if report.relaunches else None
        detail = "no relaunch in the history" if last is None else (
            f"{report.never_heard_count} of {report.relaunches[-1].listeners} never heard generation {last}"
            + (f" (e.g. {', '.join(report.never_heard_relaunch[:3])})" if report.never_heard_relaunch else ""))
        add("never_heard_relaunch", spec.never_heard_relaunch, spec.never_heard_relaunch.holds(value), value,
            f"expected {spec.never_heard_relaunch}; {detail} ({where})")
    for key, gap_s, what in (("max_gap", report.max_gap_s, "the largest gap of any listener"),
                             ("max_gap_p99", report.max_gap_p99_s, "p99 over listeners of each one's largest gap")):
        expect = getattr(spec, key)
        if expect is None:
            continue
        worst = ", ".join(f"{lid} {gap:.2f}s" for lid, gap in report.worst_gaps[:3])
        add(key, expect, expect.holds(gap_s), gap_s,
            f"expected {expect}; {what} is {_seconds(gap_s)} (worst: {worst or 'none'}; {where})")
    for key, total, listeners in (("duplicates", report.duplicates, report.duplicate_listeners),
                                  ("out_of_order", report.out_of_order, report.out_of_order_listeners)):
        expect = getattr(spec, key)
        if expect is not None:
            add(key, expect, expect.holds(float(total)), float(total),
                f"expected {expect}; {total} frames {key.replace('_', ' ')} at {listeners} listeners ({where})")
    if spec.relaunches is not None:
        count = float(len(report.relaunches))
        gens = ", ".join(str(r.generation) for r in report.relaunches) or "none"
        add("relaunches", spec.relaunches, spec.relaunches.holds(count), count,
            f"expected {spec.relaunches}; {len(report.relaunches)} relaunches (generations {gens})")
    if spec.back_within is not None:
        key = f"{spec.back_within.seconds:g}"
        wanted = spec.back_within.fraction
        if not report.relaunches:
            add("back_within", wanted, False, None,
                f"expected {wanted} back within {format_duration(spec.back_within.seconds)} of each relaunch; "
                f"room {report.room} was never relaunched: nothing to come back from")
        elif not any(r.listeners for r in report.relaunches):
            add("back_within", wanted, False, None,
                f"expected {wanted} back within {format_duration(spec.back_within.seconds)} of each relaunch; "
                f"no listener was on room {report.room} before any of its {len(report.relaunches)} relaunches")
        else:
            parts, ok, values = [], True, []
            for r in report.relaunches:
                if not r.listeners:  # nobody listening before it (e.g. before the load started): nobody to bring back
                    parts.append(f"generation {r.generation}: no listener before it")
                    continue
                fraction = r.back_within.get(key)
                values.append(fraction)
                met = wanted.holds(fraction)
                ok = ok and met
                parts.append(f"generation {r.generation}: {format_value(fraction)} of {r.listeners}"
                             + ("" if met else " (not met)"))
            add("back_within", wanted, ok, values[-1],
                f"expected {wanted} back within {format_duration(spec.back_within.seconds)} of each relaunch; "
                + "; ".join(parts))
    return out
