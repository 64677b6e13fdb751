"""Resolve a fault's target to instance names, and a link to proxy names.

Filters narrow the candidates (service, instance, replica, label, stack
selectors); ``count``/``percent`` then pick from the sorted candidates with
the run's one seeded RNG, so the same seed hits the same instances.
``check_target`` and ``check_link`` say beforehand, from the stack file,
what a target or link names that the stack does not have.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from chaos.errors import UsageError
from chaos.problems import suggest
from chaos.faults.base import PathKey, StackFacts
from chaos.faults.model import Target

if TYPE_CHECKING:
    from chaos.stack.contract import Instance, LiveStack


class TargetError(UsageError):
    """A target or link names nothing in this stack."""


def describe(target: Target) -> str:
    return ", ".join(f"{k}={v}" for k, v in target.model_dump(exclude_none=True).items())


def _labels(instance: Instance) -> dict[str, str]:
    return {"service": instance.service, "replica": str(instance.replica), "instance": instance.name}


def candidates(target: Target, stack: LiveStack) -> list[str]:
    pool = stack.instances(target.service) if target.service else stack.instances()
    if target.instance:
        pool = [i for i in pool if i.name == target.instance]
    if target.replica is not None:
        pool = [i for i in pool if i.replica == target.replica]
    if target.label:
        pool = [i for i in pool if all(_labels(i).get(k) == v for k, v in target.label.items())]
    names = sorted(i.name for i in pool)
    if target.hosting is not None:
        chosen = set(stack.select("hosting", room=target.hosting))
        names = [n for n in names if n in chosen]
    if target.select is not None:
        params = {k: v for k, v in target.select.items() if k != "name"}
        chosen = set(stack.select(str(target.select["name"]), **params))
        names = [n for n in names if n in chosen]
    return names


def pick(names: list[str], rng: random.Random, count: int | None = None, percent: float | None = None) -> list[str]:
    if count is not None:
        n = min(count, len(names))
    elif percent is not None:
        n = max(1, math.ceil(len(names) * percent / 100 - 1e-9)) if names else 0
    else:
        return list(names)
    return sorted(rng.sample(sorted(names), n))


def resolve(target: Target, stack: LiveStack, rng: random.Random) -> list[str]:
    names = candidates(target, stack)
    if not names:
        raise TargetError(f"target {{{describe(target)}}} matches no instance")
    return pick(names, rng, target.count, target.percent)


def link_proxies(link: str, stack: LiveStack, target: Target | None, rng: random.Random) -> list[str]:
    """Proxies of ``link``: 'edge->state' (every proxy of the link) or 'crowd->edge-2' (that one)."""
    proxies = stack.links()
    matched = [p for p in proxies if p.link == link or p.name == link]
    if not matched:
        known = sorted({p.link for p in proxies})
        raise TargetError(f"link {link!r} is not in this stack (links: {', '.join(known)})")
    if target is None:
        return sorted(p.name for p in matched)
    servers = {p.name.split("->", 1)[1]: p.name for p in matched}
    wanted = set(candidates(target, stack))
    names = sorted(servers[s] for s in servers if s in wanted)
    if not names:
        raise TargetError(f"no proxy of link {link!r} leads to target {{{describe(target)}}}")
    return pick(names, rng, target.count, target.percent)


def check_target(target: Target, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
    """What a target names that the stack file does not have (at the experiment's scale)."""
    spec = stack.spec
    every_instance = {n for names in stack.instances.values() for n in names}
    if target.service is not None and target.service not in spec.services:
        yield ("service",), f"no service {target.service!r} in stack {spec.name}; {suggest(target.service, spec.services)}"
    if target.instance and target.instance not in every_instance:
        yield ("instance",), f"no instance {target.instance!r} at this scale; {suggest(target.instance, every_instance)}"
    replicas = stack.instances.get(target.service or "")
    if target.replica and replicas is not None and target.replica > len(replicas):
        yield ("replica",), f"{target.service} has {len(replicas)} replica(s) at this scale"
    if target.hosting is not None and "hosting" not in spec.selectors:
        yield ("hosting",), f"stack {spec.name} declares no selector 'hosting'"
    if target.select is not None and target.select.get("name") not in spec.selectors:
        name = str(target.select.get("name"))
        known = suggest(name, spec.selectors) if spec.selectors else "it declares none"
        yield ("select", "name"), f"no selector {name!r} in stack {spec.name}; {known}"


def check_link(link: str, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
    """A link the stack file does not declare: by service (``edge->state``) or to one instance (``crowd->edge-2``)."""
    links = set(stack.spec.links)
    pairs = {tuple(x.replace(" ", "").split("->")) for x in links}
    client, _, server = link.partition("->")
    if (client, server) in pairs:
        return
    base = server.rsplit("-", 1)[0]
    if (client, base) in pairs and server in stack.instances.get(base, []):
        return
    yield ("link",), f"no link {link!r} in stack {stack.spec.name}; {suggest(link, sorted(links))}"
