"""The experiment file, as typed classes.

One file declares the stack, the load, the steady state, a method on a
timeline, recovery assertions and abort conditions. Every mapping forbids
unknown keys (a typo is an error with a suggestion, never silently ignored)
and every probe, wherever it appears, is judged against an ``expect``.
The method's fault steps are the models the fault modules registered
(chaos.faults): this module only collects them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, PlainSerializer, Tag, WithJsonSchema, model_validator

from chaos.experiment.durations import Duration
from chaos.experiment.expect import RISES_ONLY_IN_RECOVERY, Expectation, parse_expectation
from chaos.experiment.fields import Name, StepBase, Strict
from chaos.faults import kinds
from chaos.faults.model import FaultBase, LinkFault, ServerFault, Target

# The fault steps' bases and targets are chaos.faults.model's; named here too for readers of the model.
__all__ = ["FAULTS", "AbortCondition", "Check", "CheckStep", "Experiment", "FaultBase", "FaultStep", "HistoryCheck",
           "KnownWeakness", "LinkFault", "Load", "ParallelStep", "RecoveryCheck", "ServerFault", "SteadyCheck", "Step",
           "StepBase", "SubStep", "Target", "WaitStep"]

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
    PlainSerializer(Expectation.as_written, return_type=Any),  # a dump validates back to the same (in_room)
    WithJsonSchema(EXPECT_SCHEMA),
]

# A recovery check's: also {rises_by: N}, judged against the probe's last value before the fault.
RECOVERY_EXPECT_SCHEMA: dict[str, Any] = {
    "description": EXPECT_SCHEMA["description"] + " | {rises_by: N} (within: N above the value before the fault)",
    "anyOf": [
        *EXPECT_SCHEMA["anyOf"],
        {
            "type": "object",
            "properties": {"rises_by": {"type": "number", "exclusiveMinimum": 0}},
            "required": ["rises_by"],
            "additionalProperties": False,
        },
    ],
}

RecoveryExpect = Annotated[
    Any,
    BeforeValidator(lambda v: v if isinstance(v, Expectation) else parse_expectation(v, rises=True)),
    PlainSerializer(Expectation.as_written, return_type=Any),
    WithJsonSchema(RECOVERY_EXPECT_SCHEMA),
]


# ---------------------------------------------------------------- probes and checks

ProbeRef = Annotated[
    Union[Name, dict[str, Any]],
    Field(
        description="a probe the stack declares (room.state, crowd.connected_ratio, ...) "
        "or an inline probe spec (http / metric / state) as chaos.stack.probes evaluates it"
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
    (on a read made after the fault was injected, or, for a check that held at
    no read before the fault, on its last read before it), then passing by the
    deadline; the recovery time runs from the clock's start to that pass.
    """

    expect: RecoveryExpect = Field(
        description="what the value must be; {rises_by: N}: at least N above its last read before the fault "
        "(a counter that something else, e.g. a relaunch nobody injected, may have moved before it)"
    )
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
        if self.expect.op == "rises_by" and self.within is None:
            raise ValueError(f"expect: {RISES_ONLY_IN_RECOVERY}, not throughout")
        return self


class AbortCondition(Check):
    """The run stops (verdict aborted) as soon as ``expect`` holds, for ``for`` if given."""

    for_: Duration = Field(0.0, alias="for", description="must hold this long before aborting")


# ---------------------------------------------------------------- method steps

# Every fault kind registered by a module of chaos.faults (``fault:`` value -> model).
FAULTS: dict[str, type[FaultBase]] = {name: kind.model for name, kind in kinds().items()}


def _fault_tag(value: Any) -> str | None:
    kind = value.get("fault") if isinstance(value, dict) else getattr(value, "fault", None)
    return f"fault:{kind}" if isinstance(kind, str) else None


if TYPE_CHECKING:
    FaultStep = FaultBase  # what type checkers see: every registered model is a FaultBase
else:  # the union of the registered models, known only once chaos.faults has loaded them
    FaultStep = Annotated[
        Union[tuple(Annotated[cls, Tag(f"fault:{name}")] for name, cls in FAULTS.items())],
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
    parallel: list[SubStep] = Field(
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
# ParallelStep names SubStep before it exists: the models defer their build, so the
# name resolves when the experiment model is first used (one schema build for all).


# ---------------------------------------------------------------- experiment


class Load(Strict):
    """The crowd the stack's load service keeps connected during the run."""

    room: str | None = Field(None, description="room the host creates and listeners join (default: the stack file's load start action's)")
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
