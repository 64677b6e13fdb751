"""What every fault step of an experiment file has, and the bases of the fault families.

A fault module subclasses one of these with a ``fault: Literal[...]`` field
and its own keys, then registers the class with its handler
(``chaos.faults.base.register``); the experiment model collects every
registered class into its method steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from chaos.experiment.durations import Duration
from chaos.experiment.fields import Name, StepBase, Strict, Toxicity


class Target(Strict):
    """Which instances a fault hits. Filters narrow the set, then count/percent pick from it (seeded)."""

    service: Name | None = Field(None, description="all instances of a service, e.g. edge")
    instance: Name | None = Field(None, description="one instance by name, e.g. edge-2")
    replica: int | None = Field(None, ge=1, description="with service: the n-th replica (1-based)")
    label: dict[str, str] | None = Field(None, description="instances whose labels include all of these")
    hosting: str | None = Field(None, description="the instance hosting this room (stack selector 'hosting')")
    select: dict[str, Any] | None = Field(
        None, description="any stack selector: {name: hosting, room: launch}"
    )
    count: int | None = Field(None, ge=1, description="pick this many at random (seeded)")
    percent: float | None = Field(None, gt=0, le=100, description="pick this percentage at random (seeded)")
    all: bool | None = Field(None, description="every matching instance (the default)")

    @model_validator(mode="after")
    def _coherent(self) -> Target:
        if not any([self.service, self.instance, self.label, self.hosting, self.select]):
            raise ValueError("a target names at least one of service, instance, label, hosting, select")
        if self.replica is not None and not self.service:
            raise ValueError("replica needs service, e.g. {service: edge, replica: 2}")
        picks = [k for k in ("count", "percent") if getattr(self, k) is not None]
        if len(picks) > 1 or (picks and self.all):
            raise ValueError("choose one of all, count, percent")
        if self.select is not None and not isinstance(self.select.get("name"), str):
            raise ValueError("select needs a name, e.g. {name: hosting, room: launch}")
        return self


class FaultBase(StepBase):
    if TYPE_CHECKING:  # each fault's model declares it as its name, Literal["kill"], after its family's keys
        fault: str

    for_: Duration | None = Field(
        None, alias="for", description="roll back after this long (default: at the end of the run)"
    )


class LinkFault(FaultBase):
    """A network fault on a link's proxies (chaos.faults.network)."""

    link: str = Field(
        description="a link of the stack: 'edge->state' (all its proxies) or 'crowd->edge-2' (one proxy)",
        pattern=r"^[A-Za-z0-9_.\-]+->[A-Za-z0-9_.\-]+$",
    )
    target: Target | None = Field(None, description="narrow to the proxies whose server matches this target")
    direction: Literal["upstream", "downstream", "both"] = Field(
        "downstream", description="upstream = client to server, downstream = server to client (Toxiproxy)"
    )
    toxicity: Toxicity = Field(1.0, description="share of connections affected (Toxiproxy)")


class ServerFault(FaultBase):
    """A fault on instances (containers or processes), chosen by a target (chaos.faults.server)."""

    target: Target
