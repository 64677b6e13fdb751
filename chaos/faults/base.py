"""The fault contract, after Jepsen's nemesis protocol, and the registry of fault kinds.

A fault kind is a model (a ``chaos.faults.model`` subclass with
``fault: Literal["kill"]``) and a handler (a ``Fault``):

- ``check(step, stack)``: before anything starts, what the stack file and
  the backend say against the step (a link it lacks, a backend that cannot
  do it); the model's own validation has run already.
- ``prepare(step, step_id, ctx)``: resolve the step's targets now and return
  one ``Part`` per thing it will do (kill edge-2, add a toxic on
  crowd->edge-1). Nothing is done to the stack yet, so that a parallel group
  can be prepared before its start and then fired all at once.
- ``Part.do()`` acts (Jepsen's ``invoke!``) and returns what undoes it, as
  data (``chaos.faults.undo``: Jepsen's ``teardown!``, but written down, so
  the run's ledger can replay it after a SIGKILL). A part whose undo is known
  before it acts, and is harmless if the act never happened (remove rules by
  their tag), says so as ``Part.ahead``: the ledger has it before ``do()``,
  so a SIGKILL between the act and its record leaves nothing behind.

A fault module registers each kind with one line, as Toxiproxy's toxics do::

    register(KillFault, OnInstances(lambda stack, name, step: stack.kill(name), undo="start_if_down"))
"""

from __future__ import annotations

import random
import threading
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chaos.faults.model import FaultBase

if TYPE_CHECKING:
    from chaos.proxy.client import ProxyClient
    from chaos.stack.contract import LiveStack
    from chaos.stack.spec import StackSpec

# What undoes one part of a fault, as data: ("stack", "resume", "supervisor-2"),
# ("proxy", "remove_toxic", "edge->state-1", "rq...."); see chaos.faults.undo.
Undo = tuple[str, ...]

# Where a check's finding sits, under the step: ("link",), ("target", "service"), ("fault",).
PathKey = tuple[str | int, ...]

F = TypeVar("F", bound=FaultBase)


@dataclass
class FaultContext:
    """What handlers act on: the running stack, its proxy's API (created on first use), the run's seeded RNG.

    ``scope`` holds the run's load parameters (e.g. its room): a step that
    leaves such a parameter out acts where the run's load is.
    """

    stack: LiveStack
    make_proxy: Callable[[], ProxyClient]
    rng: random.Random = field(default_factory=random.Random)
    run_id: str = ""
    scope: Mapping[str, Any] = field(default_factory=dict)
    _proxy: ProxyClient | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def proxy(self) -> ProxyClient:
        with self._lock:  # parts of a parallel group run in threads of their own
            if self._proxy is None:
                self._proxy = self.make_proxy()
            return self._proxy


@dataclass(frozen=True)
class Part:
    """One thing a fault does: ``do()`` acts and returns the undo (None: nothing to undo)."""

    hit: str
    do: Callable[[], Undo | None]
    ahead: Undo | None = None  # written down before do(): an undo that finds nothing to undo if do() never acted


class Registrar(Protocol):
    def __call__(self, hit: str, undo: Undo | None) -> None: ...


Ahead = Callable[[Undo], None]  # writes a part's undo down before the part acts (the run's ledger)


def run_parts(parts: list[Part], done: Registrar, ahead: Ahead | None = None) -> None:
    """Do the parts one after the other, registering each undo as soon as its part is done.

    A step that fails half-way (the second of three kills) still has its
    first half registered, so it is rolled back.
    """
    for part in parts:
        if part.ahead is not None and ahead is not None:
            ahead(part.ahead)
        try:
            undo = part.do()
        except BaseException:
            if part.ahead is not None:
                # what it did before failing (a service scaled to 0, a first rule added) is rolled back in
                # process too, not only by a later sweep: an undo written ahead finds nothing where nothing was done
                done(part.hit, part.ahead)
            raise
        done(part.hit, undo)


@dataclass
class Injection:
    """One injected step: what it hit, how to undo each part, and when it was done and undone."""

    step: str
    fault: str
    params: dict[str, Any] = field(default_factory=dict)
    parts: list[tuple[str, Undo | None]] = field(default_factory=list)
    injected_t: float | None = None  # when the injection began (the anchor of recovery clocks)
    took_s: float | None = None  # how long it took; None: not injected to the end
    rolled_back_t: float | None = None
    rollback_errors: list[str] = field(default_factory=list)  # "hit: error", one per part that could not be undone

    def register(self, hit: str, undo: Undo | None) -> None:
        """A ``Registrar``: a part is done."""
        self.parts.append((hit, undo))

    @property
    def hit(self) -> list[str]:
        """What the fault hit: instance names (server faults) or ``proxy/stream`` (link faults)."""
        return [name for name, _ in self.parts]

    names = hit  # the authoring API's word for it (``hit.names[0]``)

    @property
    def rolled_back(self) -> bool:
        return self.rolled_back_t is not None

    @property
    def one_shot(self) -> bool:
        """Done and over: nothing of it to undo (a surge, a restart)."""
        return bool(self.parts) and all(undo is None for _, undo in self.parts)


@dataclass(frozen=True)
class StackFacts:
    """What a fault's ``check`` knows before anything starts."""

    spec: StackSpec  # services, links, selectors, load actions, automation
    instances: dict[str, list[str]]  # instance names per service at the experiment's scale
    backend: str | None = None  # docker | local; None: not known yet


class Fault(ABC, Generic[F]):
    """How one kind of fault is done (the handler a model is registered with)."""

    # Backends that can do it (None: every one), and what only they have, for the message.
    backends: frozenset[str] | None = None
    needs: str = ""

    def check(self, step: F, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        """Problems the stack file shows against the step, each as (key under the step, message)."""
        return iter(())

    @abstractmethod
    def prepare(self, step: F, step_id: str, ctx: FaultContext) -> list[Part]:
        """Resolve the step's targets (and create the clients it needs); nothing is done to the stack yet."""


@dataclass(frozen=True)
class Kind:
    name: str  # the `fault:` value
    model: type[FaultBase]
    handler: Fault[Any]


_KINDS: dict[str, Kind] = {}


def fault_name(model: type[FaultBase]) -> str:
    """The ``fault:`` value a model declares (``fault: Literal["kill"]``)."""
    names = typing.get_args(model.model_fields["fault"].annotation)
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{model.__name__}.fault must be Literal['<name>']")
    return names[0]


def register(model: type[F], handler: Fault[F]) -> type[F]:
    """Make a fault kind known: its model joins experiment files' method steps, its handler does it."""
    name = fault_name(model)
    if name in _KINDS:
        raise ValueError(f"fault {name!r} is registered twice ({_KINDS[name].model.__name__}, {model.__name__})")
    _KINDS[name] = Kind(name, model, handler)
    return model


def kinds() -> Mapping[str, Kind]:
    """Every registered fault kind, by name (import ``chaos.faults`` first: it loads every fault module)."""
    return _KINDS


def kind_of(step: FaultBase) -> Kind:
    try:
        return _KINDS[step.fault]
    except KeyError:
        raise TypeError(f"no handler for fault {step.fault!r}") from None
