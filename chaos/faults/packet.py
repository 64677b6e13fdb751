"""Packet faults inside containers' network namespaces: loss by probability, and a partition between instances.

What Pumba, Chaos Mesh and Jepsen do with netem, done with iptables (this
kernel has no netem; chaos.faults.iptables says how): ``packet_loss`` drops
each packet entering and/or leaving the target's namespace with a
probability (the ``statistic`` match); ``partition`` drops everything
between the target's instances and the ``from`` instances, both ways, on
both sides: their addresses, and the fault proxy's listeners of the links
between them (every service reaches another through the proxy, so cutting
addresses alone would cut nothing the services use).

Each namespace's rules carry the step's tag; the undo, as data, is
``("netfilter", "remove", instance, tag)``: the runner, the authoring API
and the ledger of a SIGKILLed runner (``roomquake clean``) remove them the
same way. It is in the ledger before the first rule is added (``Part.ahead``:
removing a tag that has no rule does nothing), so a SIGKILL between the
rules and their record leaves none behind. A container that stopped took its namespace and its rules with it.
Containers only: ``--backend docker`` or ``swarm``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, TypeVar

from pydantic import Field

from chaos.errors import UsageError
from chaos.faults import iptables
from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, Undo, register
from chaos.faults.model import ServerFault, Target
from chaos.faults.targets import check_target, resolve
from chaos.faults.undo import undo_op
from chaos.stack.netns import Namespace, namespace, proxy_port

CONTAINERS = frozenset({"docker", "swarm"})


class PacketLossFault(ServerFault):
    """Drop a share of the packets entering and/or leaving the target instances (each packet drawn on its own)."""

    fault: Literal["packet_loss"]
    probability: float = Field(gt=0, le=1, description="share of packets dropped, e.g. 0.2")
    direction: Literal["in", "out", "both"] = Field("both", description="packets entering, leaving, or both")


class PartitionFault(ServerFault):
    """Cut the target instances off from the ``from`` instances, both ways."""

    fault: Literal["partition"]
    from_: Target = Field(alias="from", description="the other side, e.g. {service: state}")


def _namespace(ctx: FaultContext, instance: str) -> Namespace:
    found = namespace(ctx.stack, instance)
    if found is None:
        raise UsageError(f"{instance} is not running: it has no network namespace to put rules in")
    return found


def _undo(instance: str, tag: str) -> Undo:
    return ("netfilter", "remove", instance, tag)


def _in_namespace(ns: Namespace, rules: list[iptables.Rule], tag: str) -> Undo:
    undo = _undo(ns.instance, tag)
    try:
        iptables.add(ns.pid, rules, tag)
    except BaseException:
        iptables.remove(ns.pid, tag)  # half a set of rules is not left behind
        raise
    return undo


S = TypeVar("S", bound=ServerFault)


class OnNamespaces(Fault[S]):
    backends = CONTAINERS
    needs = "containers (a network namespace per instance)"

    def check(self, step: S, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        yield from ((("target", *path), message) for path, message in check_target(step.target, stack))


class PacketLoss(OnNamespaces[PacketLossFault]):
    def prepare(self, step: PacketLossFault, step_id: str, ctx: FaultContext) -> list[Part]:
        iptables.require()
        tag = iptables.tag(ctx.run_id, step_id)
        chance = ["-m", "statistic", "--mode", "random", "--probability", f"{step.probability:.6f}"]
        rules: list[iptables.Rule] = []
        if step.direction in ("in", "both"):
            rules.append(("INPUT", "!", "-i", "lo", *chance))
        if step.direction in ("out", "both"):
            rules.append(("OUTPUT", "!", "-o", "lo", *chance))

        def part(instance: str) -> Part:
            return Part(instance, lambda: _in_namespace(_namespace(ctx, instance), rules, tag), ahead=_undo(instance, tag))

        return [part(name) for name in resolve(step.target, ctx.stack, ctx.rng)]


def cut_rules(me: str, others: list[Namespace], proxy: Namespace | None, links: list[tuple[str, str, int]]) -> list[iptables.Rule]:
    """Rules in ``me``'s namespace that cut it from ``others``: their addresses, and the proxy listeners of its links to them.

    ``links``: (client service, server instance, listener port) of every link proxy.
    """
    rules: list[iptables.Rule] = []
    for other in others:
        for address in other.addresses:
            rules += [("INPUT", "-s", address), ("OUTPUT", "-d", address)]
    service = me.rsplit("-", 1)[0]
    names = {o.instance for o in others}
    for client, server, port in links:
        if proxy is None or client != service or server not in names:
            continue
        for address in proxy.addresses:
            rules += [("OUTPUT", "-d", address, "-p", "tcp", "--dport", str(port)),
                      ("INPUT", "-s", address, "-p", "tcp", "--sport", str(port))]
    return rules


class Partition(OnNamespaces[PartitionFault]):
    def check(self, step: PartitionFault, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        yield from super().check(step, stack)
        yield from ((("from", *path), message) for path, message in check_target(step.from_, stack))

    def prepare(self, step: PartitionFault, step_id: str, ctx: FaultContext) -> list[Part]:
        iptables.require()
        tag = iptables.tag(ctx.run_id, step_id)
        near = resolve(step.target, ctx.stack, ctx.rng)
        far = resolve(step.from_, ctx.stack, ctx.rng)
        both = sorted(set(near) & set(far))
        if both:
            raise UsageError(f"partition: {', '.join(both)} would be on both sides (target and from)")
        spaces = {name: _namespace(ctx, name) for name in near + far}
        proxy_name = f"{ctx.stack.spec.proxy.service}-1"
        proxy = spaces.get(proxy_name) or namespace(ctx.stack, proxy_name)
        links = [(p.link.split("->")[0], p.name.split("->", 1)[1], proxy_port(p.listen)) for p in ctx.stack.links()]

        def part(name: str, others: list[str]) -> Part:
            rules = cut_rules(name, [spaces[o] for o in others], proxy, links)
            return Part(name, lambda: _in_namespace(spaces[name], rules, tag), ahead=_undo(name, tag))

        return [part(name, far) for name in near] + [part(name, near) for name in far]


@undo_op("netfilter", "remove")
def _remove(ctx: FaultContext, instance: str, tag: str) -> None:
    found = namespace(ctx.stack, instance)
    if found is not None:  # a container that is not running took its namespace and rules with it
        iptables.remove(found.pid, tag)


register(PacketLossFault, PacketLoss())
register(PartitionFault, Partition())
