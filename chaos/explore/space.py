"""The fault space of an exploration: every single fault the stack file and the fault catalogue allow.

An ``Atom`` is one fault kind at one place (``kill`` on ``{service: edge,
replica: 2}``, ``latency`` on ``crowd->edge``) with the choices of its own
parameters (``latency: 300ms | 1s | 3s``). The atoms come from the registry
of chaos.faults (every kind whose step validates with the parameters known
here, and that the stack file and the backend accept: the kind's own
``check``), so a new fault kind with no required keys is explored without a
line here. Atoms are listed simplest first (kinds in ``PREFERRED`` order, a
whole link before one of its proxies, replica 1 before replica 2, selectors
last), because Hypothesis shrinks a choice towards the first one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chaos.errors import UsageError
from chaos.faults import kinds
from chaos.faults.base import StackFacts
from chaos.faults.model import LinkFault, ServerFault

if TYPE_CHECKING:
    from chaos.stack.spec import StackSpec

# Parameter choices for the kinds that need (or are more telling with) some, mildest first.
PARAMS: dict[str, list[dict[str, Any]]] = {
    "latency": [{"latency": "300ms"}, {"latency": "1s"}, {"latency": "3s"}],
    "jitter": [{"jitter": "300ms"}, {"jitter": "1s"}],
    "bandwidth": [{"rate": 10}, {"rate": 1}],
    "slow_close": [{"delay": "1s"}],
    "timeout": [{"timeout": "1s"}, {"timeout": 0}],
    "reset_peer": [{"timeout": 0}],
    "limit_data": [{"bytes": 4096}],
    "slicer": [{"average_size": 16, "size_variation": 8, "delay": "10ms"}],
    "staff_reduction": [{"mode": "remove", "fraction": 0.5}, {"mode": "pause", "fraction": 0.5},
                        {"mode": "lag", "latency": "1s"}],
}

# Shrinking moves towards the first atoms: the plainest faults first.
PREFERRED = ("kill", "stop", "restart", "pause", "down", "reset_peer", "timeout", "latency", "jitter",
             "staff_reduction")


@dataclass(frozen=True)
class Atom:
    """One fault kind at one place; ``params`` are its parameter choices (at least one, maybe empty)."""

    fault: str
    place: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    label: str = ""
    params: tuple[Mapping[str, Any], ...] = field(default=({},), hash=False, compare=False)
    picks: str | None = field(default=None, compare=False)  # a selector's service, when the stack file names it

    def chosen(self, level: int) -> Mapping[str, Any]:
        """Parameter choice ``level`` (the last one for a level past the end)."""
        return self.params[min(level, len(self.params) - 1)]

    def step(self, level: int, at: float, for_: float, step_id: str) -> dict[str, Any]:
        """The method step (plain data, as an experiment file has it) for parameter choice ``level``."""
        from chaos.experiment.durations import format_duration

        chosen = self.chosen(level)
        return {"id": step_id, "at": format_duration(at), "fault": self.fault, **dict(self.place),
                **dict(chosen), "for": format_duration(for_)}


@dataclass(frozen=True)
class FaultSpace:
    atoms: tuple[Atom, ...]
    excluded: tuple[str, ...] = ()  # services left out, and why (shown to the user)
    redundant: tuple[tuple[str, int], ...] = ()  # (service, instances) of the faulted services with several

    def __post_init__(self) -> None:
        if not self.atoms:
            raise UsageError("explore: the fault space is empty (no fault kind applies to this stack, backend and choice)")


def _instances(spec: StackSpec, scale: Mapping[str, int]) -> dict[str, list[str]]:
    return {name: [f"{name}-{n}" for n in range(1, scale.get(name, svc.replicas) + 1)] for name, svc in spec.services.items()}


def load_generators(spec: StackSpec) -> set[str]:
    """Services the load ``start`` action addresses as a whole (the crowd): faulting them breaks the measurement."""
    start = spec.load.get("start")
    return {s.service for s in start.steps if s.instance is None} if start is not None else set()


def _places(model: type[Any], spec: StackSpec, names: dict[str, list[str]], services: Sequence[str],
            links: Sequence[str], room: str | None) -> Iterable[tuple[dict[str, Any], str, str | None]]:
    """(place, label, the service a selector picks) for each place a fault of ``model`` can go."""
    if issubclass(model, ServerFault):
        for service in services:
            for replica, name in enumerate(names.get(service, []), start=1):
                yield {"target": {"service": service, "replica": replica}}, name, None
        for selector, sel in spec.selectors.items():
            if sel.service is not None and sel.service not in services:
                continue  # it picks from a service left out
            # the experiment's room named (a pooled stack runs it under another name, and renames it here too)
            params = {"room": room} if room is not None and "room" in sel.params else {}
            yield {"target": {"select": {"name": selector, **params}}}, f"<{selector}>", sel.service
    elif issubclass(model, LinkFault):
        for link in links:
            yield {"link": link}, link, None
            client, _, server = link.partition("->")
            for name in names.get(server, []) if len(names.get(server, [])) > 1 else []:
                yield {"link": f"{client}->{name}"}, f"{client}->{name}", None
    else:
        yield {}, "", None


def build_space(spec: StackSpec, backend: str, scale: Mapping[str, int] | None = None,
                faults: Sequence[str] | None = None, services: Sequence[str] | None = None,
                links: Sequence[str] | None = None, room: str | None = None) -> FaultSpace:
    """Every atom for this stack at ``scale`` on ``backend``, narrowed to ``faults``/``services``/``links`` if given.

    ``room``: the experiment's room, given to the stack's selectors that take one (``hosting``).
    """
    registry = kinds()
    unknown = sorted(set(faults or ()) - set(registry))
    if unknown:
        raise UsageError(f"explore: unknown fault kind {', '.join(unknown)} (known: {', '.join(sorted(registry))})")
    names = _instances(spec, scale or {})
    excluded: list[str] = []
    if services is None:
        skip = {spec.proxy.service} | load_generators(spec)
        chosen = [s for s in spec.services if s not in skip]
        excluded = [f"{s} (the fault proxy)" if s == spec.proxy.service else f"{s} (the load generator)"
                    for s in spec.services if s in skip]
    else:
        missing = sorted(set(services) - set(spec.services))
        if missing:
            raise UsageError(f"explore: no service {', '.join(missing)} in stack {spec.name}")
        chosen = list(services)
    chosen_links = list(links) if links is not None else list(spec.links)
    facts = StackFacts(spec, names, backend)
    order = {name: i for i, name in enumerate(PREFERRED)}
    wanted = sorted(faults or registry, key=lambda k: (order.get(k, len(order)), k))
    atoms: list[Atom] = []
    for kind_name in wanted:
        kind = registry[kind_name]
        if kind.handler.backends is not None and backend not in kind.handler.backends:
            continue
        choices = PARAMS.get(kind_name, [{}])
        for place, where, picks in _places(kind.model, spec, names, chosen, chosen_links, room):
            usable = []
            for choice in choices:
                try:
                    step = kind.model.model_validate({"fault": kind_name, **place, **choice})
                except ValidationError:
                    continue  # a kind that needs keys explore does not know is left out
                if not list(kind.handler.check(step, facts)):
                    usable.append(choice)
            if usable:
                atoms.append(Atom(kind_name, place, f"{kind_name} {where}".strip(), tuple(usable), picks))
    if faults and not atoms:
        raise UsageError(f"explore: none of {', '.join(faults)} applies to stack {spec.name} on backend {backend}")
    redundant = tuple((s, len(names[s])) for s in chosen if len(names.get(s, [])) > 1)
    return FaultSpace(tuple(atoms), tuple(excluded), redundant)
