"""The experiment file, as typed classes.

One file declares the stack, the load, the steady state, a method on a
timeline, recovery assertions and abort conditions. Every mapping forbids
unknown keys (a typo is an error with a suggestion, never silently ignored)
and every probe, wherever it appears, is judged against an ``expect``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    model_validator,
)

from chaos.experiment.durations import Duration
from chaos.experiment.expect import Expectation, parse_expectation

EXPECT_SCHEMA: dict[str, Any] = {
    "description": "live | true | 3 | '>= 0.95' | '< 500ms' | '>= 90%' | {one_of: [...]} | {between: [low, high]}",
    "anyOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {
            "type": "object",
            "properties": {"one_of": {"type": "array", "minItems": 1}},
            "required": ["one_of"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"between": {"type": "array", "minItems": 2, "maxItems": 2}},
            "required": ["between"],
            "additionalProperties": False,
        },
    ],
}

Expect = Annotated[
    Any,
    BeforeValidator(lambda v: v if isinstance(v, Expectation) else parse_expectation(v)),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(EXPECT_SCHEMA),
]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
Fraction = Annotated[float, Field(gt=0, le=1)]
Toxicity = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# ---------------------------------------------------------------- targets


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


# ---------------------------------------------------------------- probes and checks

ProbeRef = Annotated[
    Union[Name, dict[str, Any]],
    Field(
        description="a probe the stack declares (room.state, crowd.connected_ratio, ...) "
        "or an inline probe spec (http / metric / state) as chaos.probes evaluates it"
    ),
]


class Check(Strict):
    """A probe judged against an expectation."""

    id: Name | None = Field(None, description="name used in messages and by after/during references")
    probe: ProbeRef
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="probe parameters, e.g. {room: launch}")
    expect: Expect = Field(description="what the value must be")
    description: str | None = None

    def label(self) -> str:
        name = self.probe if isinstance(self.probe, str) else "inline probe"
        return self.id or name


class SteadyCheck(Check):
    """Must hold before the method and again after recovery."""

    within: Duration | None = Field(
        None, description="may take this long to hold (defaults to the experiment's settle)"
    )


class RecoveryCheck(Check):
    """Must come true within a deadline (recovery time is measured), or hold throughout a window.

    A ``within`` check is a recovery: the probe must first be seen failing
    (on a read made after the fault was injected), then passing by the
    deadline; the recovery time runs from the clock's start to that pass.
    """

    within: Duration | None = Field(None, description="deadline, counted from `after` (default: end of the method)")
    throughout: Duration | None = Field(None, description="must hold at every sample for this long")
    after: Name | None = Field(None, description="id of the method step whose end starts the clock")
    every: Duration = Field(0.25, description="sampling interval of this probe (at most the experiment's sample_every)")
    undisturbed: Literal["fail", "pass"] | None = Field(
        None,
        description="within: what it means when the probe never failed after the fault (outcome 'not disturbed', "
        "no recovery time): fail (the default: the check measured nothing) or pass (acceptable here)",
    )

    @model_validator(mode="after")
    def _one_timing(self) -> RecoveryCheck:
        if (self.within is None) == (self.throughout is None):
            raise ValueError("a recovery assertion takes exactly one of within (deadline) or throughout (window)")
        if self.undisturbed is not None and self.within is None:
            raise ValueError("undisturbed applies to within (a recovery), not to throughout")
        return self


class AbortCondition(Check):
    """The run stops (verdict aborted) as soon as ``expect`` holds, for ``for`` if given."""

    for_: Duration = Field(0.0, alias="for", description="must hold this long before aborting")


# ---------------------------------------------------------------- method steps


class StepBase(Strict):
    id: Name | None = Field(None, description="name for messages, after/during references")
    at: Duration | None = Field(
        None, description="start, from the method's start (default: when the previous step ends)"
    )
    description: str | None = None


class FaultBase(StepBase):
    for_: Duration | None = Field(
        None, alias="for", description="roll back after this long (default: at the end of the run)"
    )


class LinkFault(FaultBase):
    link: str = Field(
        description="a link of the stack: 'edge->state' (all its proxies) or 'crowd->edge-2' (one proxy)",
        pattern=r"^[A-Za-z0-9_.\-]+->[A-Za-z0-9_.\-]+$",
    )
    target: Target | None = Field(None, description="narrow to the proxies whose server matches this target")
    direction: Literal["upstream", "downstream", "both"] = Field(
        "downstream", description="upstream = client to server, downstream = server to client (Toxiproxy)"
    )
    toxicity: Toxicity = Field(1.0, description="share of connections affected (Toxiproxy)")


class LatencyFault(LinkFault):
    fault: Literal["latency"]
    latency: Duration
    jitter: Duration = 0.0


class JitterFault(LinkFault):
    fault: Literal["jitter"]
    jitter: Duration
    latency: Duration = 0.0


class BandwidthFault(LinkFault):
    fault: Literal["bandwidth"]
    rate: int = Field(ge=0, description="KB/s (1 KB = 1000 bytes); 0 = unlimited")


class SlowCloseFault(LinkFault):
    fault: Literal["slow_close"]
    delay: Duration


class TimeoutFault(LinkFault):
    fault: Literal["timeout"]
    timeout: Duration = Field(0.0, description="close after this long without data; 0 = never close")


class ResetPeerFault(LinkFault):
    fault: Literal["reset_peer"]
    timeout: Duration = 0.0


class SlicerFault(LinkFault):
    fault: Literal["slicer"]
    average_size: int = Field(ge=1, description="bytes")
    size_variation: int = Field(0, ge=0, description="bytes, below average_size")
    delay: Duration = Field(0.0, description="pause between slices")

    @model_validator(mode="after")
    def _variation(self) -> SlicerFault:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be below average_size")
        return self


class LimitDataFault(LinkFault):
    fault: Literal["limit_data"]
    bytes: int = Field(ge=0, description="pass this many bytes per connection and direction, then close")


class DownFault(LinkFault):
    fault: Literal["down"]


class ServerFault(FaultBase):
    target: Target


class KillFault(ServerFault):
    fault: Literal["kill"]


class StopFault(ServerFault):
    fault: Literal["stop"]


class PauseFault(ServerFault):
    fault: Literal["pause"]


class RestartFault(ServerFault):
    fault: Literal["restart"]


class DisconnectFault(ServerFault):
    fault: Literal["disconnect"]


class SqueezeFault(ServerFault):
    fault: Literal["squeeze"]
    cpus: float | None = Field(None, gt=0, description="CPU limit, e.g. 0.2")
    memory_mb: int | None = Field(None, ge=6, description="memory limit in MB")

    @model_validator(mode="after")
    def _something(self) -> SqueezeFault:
        if self.cpus is None and self.memory_mb is None:
            raise ValueError("squeeze needs cpus or memory_mb")
        return self


class StaffReductionFault(FaultBase):
    """Degrade the automation: remove some of its replicas, lag its links, or pause it."""

    fault: Literal["staff_reduction"]
    group: Name = Field("supervisor", description="the service that plays the automation")
    mode: Literal["remove", "lag", "pause"] = "remove"
    removal: Literal["kill", "stop"] = Field(
        "kill", description="remove: kill (gone without handing over its work) or stop (a clean scale-down)"
    )
    fraction: Fraction | None = Field(None, description="remove/pause: share of replicas (rounded, at least 1)")
    count: int | None = Field(None, ge=1, description="remove/pause: this many replicas")
    latency: Duration | None = Field(None, description="lag: latency added on the group's links")
    jitter: Duration = 0.0

    @model_validator(mode="after")
    def _mode_fields(self) -> StaffReductionFault:
        if self.fraction is not None and self.count is not None:
            raise ValueError("choose fraction or count, not both")
        if self.mode == "lag" and self.latency is None:
            raise ValueError("mode lag needs latency, e.g. latency: 2s")
        if self.mode != "lag" and self.latency is not None:
            raise ValueError(f"latency applies to mode lag, not {self.mode}")
        return self


class SurgeFault(FaultBase):
    fault: Literal["surge"]
    listeners: int = Field(ge=1, description="extra listeners joining")
    over: Duration = Field(0.0, description="spread the joins over this long")
    room: str | None = Field(None, description="default: the load's room")


class DrainFault(FaultBase):
    fault: Literal["drain"]
    fraction: Fraction = Field(description="share of connected listeners that leave")


FAULTS: dict[str, type[FaultBase]] = {
    cls.model_fields["fault"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        LatencyFault, JitterFault, BandwidthFault, SlowCloseFault, TimeoutFault, ResetPeerFault,
        SlicerFault, LimitDataFault, DownFault, KillFault, StopFault, PauseFault, RestartFault,
        DisconnectFault, SqueezeFault, StaffReductionFault, SurgeFault, DrainFault,
    )
}
NETWORK_FAULTS = {name for name, cls in FAULTS.items() if issubclass(cls, LinkFault)}


def _fault_tag(value: Any) -> str | None:
    kind = value.get("fault") if isinstance(value, dict) else getattr(value, "fault", None)
    return f"fault:{kind}" if isinstance(kind, str) else None


FaultStep = Annotated[
    Union[tuple(Annotated[cls, Tag(f"fault:{name}")] for name, cls in FAULTS.items())],  # type: ignore[misc]
    Discriminator(_fault_tag),
]


class CheckStep(StepBase):
    """A probe judged during the method: at a point (within a deadline) or throughout a window."""

    probe: ProbeRef
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    expect: Expect
    within: Duration | None = Field(None, description="must come true within this long after `at`")
    throughout: Duration | None = Field(None, description="must hold at every sample for this long after `at`")
    during: Name | None = Field(None, description="must hold at every sample while this fault step is active")
    every: Duration = 0.25

    @model_validator(mode="after")
    def _one_timing(self) -> CheckStep:
        given = [k for k in ("within", "throughout", "during") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"choose one of within, throughout, during (got {', '.join(given)})")
        if self.during is not None and self.at is not None:
            raise ValueError("during takes its window from the fault; drop at")
        return self

    def label(self) -> str:
        return self.id or (self.probe if isinstance(self.probe, str) else "inline probe")


class WaitStep(StepBase):
    wait: Duration = Field(description="do nothing for this long (sequential spacing)")


class ParallelStep(StepBase):
    parallel: list[Annotated[Union[FaultStep, CheckStep], Field()]] = Field(
        min_length=1, description="steps that start together (their own `at` counts from the group's start)"
    )


STEP_KEYS = {"fault": "step:fault", "probe": "step:check", "wait": "step:wait", "parallel": "step:parallel"}


def _step_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in STEP_KEYS.items():
            if key in value:
                return tag
        return None
    for key, tag in STEP_KEYS.items():
        if hasattr(value, key):
            return tag
    return None


def _sub_step_tag(value: Any) -> str | None:
    tag = _step_tag(value)
    return tag if tag in ("step:fault", "step:check") else None


Step = Annotated[
    Union[
        Annotated[FaultStep, Tag("step:fault")],
        Annotated[CheckStep, Tag("step:check")],
        Annotated[WaitStep, Tag("step:wait")],
        Annotated[ParallelStep, Tag("step:parallel")],
    ],
    Discriminator(_step_tag),
]
SubStep = Annotated[
    Union[Annotated[FaultStep, Tag("step:fault")], Annotated[CheckStep, Tag("step:check")]],
    Discriminator(_sub_step_tag),
]
ParallelStep.model_fields["parallel"].annotation = list[SubStep]  # type: ignore[assignment]
ParallelStep.model_rebuild(force=True)


# ---------------------------------------------------------------- experiment


class Load(Strict):
    """The crowd the stack's load service keeps connected during the run."""

    room: str = Field("launch", description="room the host creates and listeners join")
    listeners: int = Field(ge=0, description="listeners kept connected")
    ramp: Duration = Field(0.0, description="join them over this long")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="extra parameters for the stack's load")


class BackWithin(Strict):
    """The share of listeners (those on the room before the relaunch, still there or given up) back within N s."""

    seconds: Duration = Field(gt=0, description="counted from each relaunch")
    fraction: Expect = Field(description="e.g. '>= 0.9' or '>= 90%'")


HISTORY_ASSERTIONS = ("no_split_brain", "never_heard_relaunch", "max_gap", "max_gap_p99", "duplicates",
                      "out_of_order", "relaunches", "back_within")


class HistoryCheck(Strict):
    """Assertions on what every listener heard (the stack's per-listener histories), judged at the end of recovery."""

    id: Name = Field("history", description="prefix of the assertion ids: history.max_gap_p99, ...")
    room: str | None = Field(None, description="default: the load's room")
    no_split_brain: Literal[True] | None = Field(
        None, description="no listener received a frame of an older generation after a newer one")
    never_heard_relaunch: Expect | None = Field(
        None, description="listeners (on the room before its last relaunch) that never heard the relaunched room, e.g. '== 0'")
    max_gap: Expect | None = Field(None, description="the largest gap of any listener, e.g. '< 10s'")
    max_gap_p99: Expect | None = Field(None, description="p99 over listeners of each one's largest gap, e.g. '< 3s'")
    duplicates: Expect | None = Field(None, description="duplicated frames over all listeners, e.g. '== 0'")
    out_of_order: Expect | None = Field(None, description="frames out of order over all listeners, e.g. '== 0'")
    relaunches: Expect | None = Field(None, description="relaunches of the room, e.g. '>= 1'")
    back_within: BackWithin | None = Field(None, description="after each relaunch: {seconds: 10, fraction: '>= 0.9'}")

    @model_validator(mode="after")
    def _something(self) -> HistoryCheck:
        if all(getattr(self, key) is None for key in HISTORY_ASSERTIONS):
            raise ValueError(f"history asserts nothing; give at least one of {', '.join(HISTORY_ASSERTIONS)}")
        return self

    def asserted(self) -> list[str]:
        return [key for key in HISTORY_ASSERTIONS if getattr(self, key) is not None]


class KnownWeakness(Strict):
    """Declares that this experiment demonstrates a weakness: it passes only if it deviates exactly so."""

    description: str
    deviates: list[Name] = Field(min_length=1, description="ids of the assertions expected to fail, and only those")


class Experiment(Strict):
    title: str = Field(min_length=1)
    description: str = ""
    tags: list[Name] = Field(default_factory=list)
    stack: str = Field("audio-room", description="a stack name or a path to a stack file")
    profile: str | None = Field(None, description="timing profile of the stack file (e.g. ci)")
    scale: dict[Name, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    env: dict[Name, dict[str, Union[str, int, float, bool]]] = Field(
        default_factory=dict, description="per-service environment overrides, e.g. {edge: {EDGE_CAPACITY: 100}}"
    )
    seed: int | None = Field(None, description="seed of every random choice (default: drawn and recorded)")
    load: Load | None = None
    settle: Duration = Field(30.0, description="how long steady state may take to hold")
    sample_every: Duration = Field(0.25, gt=0, le=0.5, description="sampling interval of key probes (>= 2 Hz)")
    observe: list[ProbeRef] = Field(default_factory=list, description="extra probes recorded as time series")
    steady_state: list[SteadyCheck] = Field(default_factory=list)
    method: list[Step] = Field(default_factory=list)
    recovery: list[RecoveryCheck] = Field(default_factory=list)
    abort_if: list[AbortCondition] = Field(default_factory=list)
    history: HistoryCheck | None = Field(None, description="assertions on every listener's history, judged after recovery")
    known_weakness: KnownWeakness | None = None
