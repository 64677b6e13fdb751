"""The run lifecycle.

validate -> bring the stack up (or attach) -> start load -> steady state must
hold -> method on its timeline -> recovery assertions (each polled until its
deadline) -> steady state again -> roll back every fault -> tear down what we
started -> journal.

Rollback and teardown sit in one ``finally`` with signals deferred, so they
run on every path: success, deviation, error, abort condition, Ctrl-C and
SIGTERM. Every random choice comes from one RNG seeded with the recorded seed.
The runner gathers; the faults are done and undone by chaos.faults and the
verdict is judged from what was gathered by chaos.run.verdict.judge.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import random
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos import faults
from chaos.checkers.history import DEFAULT_BACK_WITHIN_S
from chaos.checkers.relaunches import FaultWindow, attribute
from chaos.errors import RoomquakeError
from chaos.experiment import model as m
from chaos.experiment.durations import format_duration
from chaos.experiment.expect import Expectation, fill_hits
from chaos.faults import FaultContext, Injection, Part, Registrar
from chaos.faults.undo import roll_back
from chaos.labels import RunIdentity
from chaos.run import checks, histories, timeline
from chaos.run import events as ev
from chaos.run import verdict as checker
from chaos.run.interrupt import Interrupted, SignalGuard
from chaos.run.journal import Journal, default_dir
from chaos.run.ledger import Ledger, sweep_dead_runs
from chaos.run.observe import AbortWatch, ProbeReader, Sampler, Watch, probe_key
from chaos.run.relaunches import watch_relaunches
from chaos.run.stacks import StackOpener, StackRequest, open_stack
from chaos.run.verdict import Verdict

KEPT_LOG_LINES = 400  # of each instance, kept beside the journal of a run that did not pass

if TYPE_CHECKING:
    from chaos.proxy.client import ProxyClient
    from chaos.stack.contract import LiveStack


class AbortRun(Exception):
    """An abort condition fired (raised in the main thread once it notices)."""


class Deviation(Exception):
    """Steady state did not hold before the method: the method is skipped."""


@dataclass
class RunOptions:
    backend: str | None = None  # docker | local; None: docker when an engine answers
    attach: str | None = None  # run id (or "latest") of a stack that is already up
    seed: int | None = None  # overrides the experiment's seed
    journal: Path | None = None  # default: <journal_dir>/<run id>.json
    journal_dir: Path | None = None  # default: $ROOMQUAKE_JOURNAL_DIR or ./journals
    progress: bool = True
    open_stack: StackOpener | None = None  # tests: hand in a fake stack
    make_proxy: Callable[[str], ProxyClient] | None = None  # tests: hand in a fake proxy client
    identity: RunIdentity | None = None
    ledger_dir: Path | None = None  # default: the stack registry's folder (tests with fakes: none unless given)
    stack_origin: ev.StackOrigin | None = None  # what open_stack expects to hand over ("reused": a pooled stack); default from attach


@dataclass
class RunResult:
    run_id: str
    verdict: Verdict
    reason: str
    exit_code: int
    journal: Path
    seed: int
    as_declared: bool | None = None
    results: list[ev.CheckResult] = field(default_factory=list)


class Runner:
    def __init__(self, experiment: m.Experiment, file: str | Path, options: RunOptions | None = None) -> None:
        self.experiment = experiment
        self.file = Path(file)
        self.options = options or RunOptions()
        self.identity = self.options.identity or RunIdentity()
        self.run_id = self.identity.run_id
        self.seed = self._seed()
        self.rng = random.Random(self.seed)
        self.bus = ev.EventBus()
        self.journal = Journal(self.options.journal or (self.options.journal_dir or default_dir()) / f"{self.run_id}.json")
        self.bus.subscribe(self.journal)
        self.stop = threading.Event()  # set when the run must wind down (abort, interrupt)
        self.abort_reason: str | None = None
        self.results: list[ev.CheckResult] = []
        self.active: list[Injection] = []  # every fault step begun, in order, rolled back or not
        self.step_ends: dict[str, float] = {}
        self.stack: LiveStack | None = None
        self.sampler: Sampler | None = None
        self.reader: ProbeReader | None = None
        self.backend = "attach" if self.options.attach else (self.options.backend or "auto")
        # how the stack was obtained; a stack opener that learns otherwise (a pool that had to start afresh) sets it
        self.stack_origin: ev.StackOrigin = "attached" if self.options.attach else (self.options.stack_origin or "brought_up")
        self.fault_context: FaultContext | None = None  # what fault handlers act on, once the stack is there
        self.scope: dict[str, Any] = {}  # the run's load parameters (e.g. its room), see _scope
        self.phase = "start"  # the lifecycle's current phase (for error events)
        self.phase_times: dict[str, float] = {}  # when each phase began (run time)
        self._exits = contextlib.ExitStack()  # what the run entered (its stack) and leaves at the end
        self._pool = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="check")
        self._abort_watches: list[AbortWatch] = []
        self.ledger: Ledger | None = None
        self._written_ahead: list[tuple[str, ...]] = []  # undos in the ledger before their part acted
        self._ahead_lock = threading.Lock()  # the parts of a group act in threads of their own
        self._guard = SignalGuard()
        self.reset_lines: list[str] = []  # what was done to a reused or attached stack before this run (journaled)
        self.parallel: list[dict[str, Any]] = []  # start spread of each group of faults due at one instant
        self.history: histories.Collected | None = None  # the listeners' histories, read at the end
        self.kept_logs: Path | None = None  # the instances' last lines, kept when the run did not pass
        self.relaunch_audit: ev.RelaunchesAudited | None = None
        self.request: StackRequest | None = None  # what the stack opener was asked, and what it reported back

    def _seed(self) -> int:
        if self.options.seed is not None:
            return self.options.seed
        if self.experiment.seed is not None:
            return self.experiment.seed
        return secrets.randbits(32)

    # ------------------------------------------------------------------ helpers

    def emit(self, event: ev.E) -> ev.E:
        return self.bus.emit(event)

    def now(self) -> float:
        return self.bus.now()

    def sleep_until(self, t: float) -> None:
        """Wait until run time ``t``; wake up early (and raise) if the run must stop."""
        while True:
            self.check_stop()
            left = t - self.now()
            if left <= 0:
                return
            self.stop.wait(min(left, 0.2))

    # ------------------------------------------------------------------ extension hooks
    # The public surface a subclass (the game day) builds on; everything prefixed
    # with "_" is internal and may change.

    def check_stop(self) -> None:
        """Raise ``AbortRun`` if an abort has been requested; call it while blocking in a hook.

        In the main thread it is also the checkpoint where a Ctrl-C or SIGTERM
        (only noted by the signal handler) becomes ``Interrupted``.
        """
        self.checkpoint()
        if self.stop.is_set() and self.abort_reason is not None:
            raise AbortRun(self.abort_reason)

    def checkpoint(self) -> None:
        """Raise ``Interrupted`` (main thread only) if a signal came in and the run is not winding down yet."""
        self._guard.check()

    def abort(self, reason: str, *, observed: Any = None, condition: str | None = None) -> None:
        """Stop the run with verdict ``aborted`` (thread-safe; the first reason wins).

        Emits ``AbortTriggered`` once; the main thread notices at its next wait and
        rolls back every fault through the end-of-run path.
        """
        if self.abort_reason is None:
            self.abort_reason = reason
            self.emit(ev.AbortTriggered(reason=reason, condition=condition, observed=observed))
        self.stop.set()

    def timeline_offset(self) -> float:
        """Seconds the method's timeline has been shifted by (base runner: never, 0.0).

        Read before each step: every later fault, rollback, check and window
        moves by it; faults already active stay active.
        """
        return 0.0

    def before_fault(self, step_id: str, step: m.FaultBase) -> None:
        """Called in the main thread when a fault step is due, just before it is injected.

        May block (call ``check_stop()`` while doing so); time spent here only
        delays later steps if ``timeline_offset()`` grows by it. Base runner: nothing.
        """

    def _live(self) -> LiveStack:
        """The run's stack (the phases that use it run after bring-up)."""
        if self.stack is None:
            raise RuntimeError("the run has no stack yet")
        return self.stack

    def _make_proxy(self) -> ProxyClient:
        """The stack's proxy API client (with the run's token), closed with the run; tests hand in a fake."""
        stack = self._live()
        if self.options.make_proxy is not None:
            client = self.options.make_proxy(stack.proxy_url)
        else:
            client = stack.proxy_client()  # carries the run's proxy token
        if isinstance(client, contextlib.AbstractContextManager):
            self._exits.enter_context(client)  # closed before the stack's own exit (last in, first out)
        return client

    def _declared(self, table: str, name: str) -> dict[str, Any]:
        """The parameters (with their defaults) that the stack file declares for a probe or a load action."""
        spec = self._live().spec
        entry = spec.probes.get(name) if table == "probes" else spec.load.get(name)
        return dict(entry.params) if entry is not None else {}

    def _scope(self) -> dict[str, Any]:
        """The run's load parameters: the stack file's ``start`` action's defaults under the experiment's load
        (none without a load). The stack file, not the toolkit, says what they are (the reference stack: its room)."""
        if self.experiment.load is None:
            return {}
        return {**self._declared("load", "start"), **self._load_params()}

    def _load_params(self) -> dict[str, Any]:
        load = self.experiment.load
        if load is None:
            return {}
        given = {"room": load.room} if load.room is not None else {}
        return {**given, "listeners": load.listeners, "ramp_s": load.ramp, **load.with_}

    def _params(self, ref: str | dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """Probe parameters: the check's own ``with``, plus the run's scope for those the probe declares and leaves out."""
        if not isinstance(ref, str):
            return dict(given)
        declared = self._declared("probes", ref)
        return {**{k: self.scope[k] for k in declared if k in self.scope and k not in given}, **given}

    def _expect(self, expect: Expectation) -> Expectation:
        """Fill ``{step-id.hit}`` in an expectation with what that step hit (e.g. ``!= {kill-edge.hit}``)."""
        return fill_hits(expect, {a.step: a.hit for a in self.active})

    def _reader(self, ref: str | dict[str, Any], params: dict[str, Any]) -> Callable[[], Any]:
        reader = self.reader
        assert reader is not None
        return lambda: reader.read(ref, params)

    def _wait_all(self, futures: list[cf.Future[Any]]) -> list[Any]:
        """Wait for worker futures in the main thread, so signals and aborts are seen promptly."""
        pending = set(futures)
        while pending:
            self.check_stop()
            _, pending = cf.wait(pending, timeout=0.1)
        return [f.result() for f in futures]

    def _record(self, label: str, phase: str, check: Any, mode: str, outcome: checks.Outcome,
                anchor_t: float | None = None, anchor: str | None = None,
                params: dict[str, Any] | None = None, expect: str | None = None) -> ev.CheckResult:
        # `expect`: what was judged, when it differs from what was written (a rises_by bound to a value)
        # a recovery time exists only for a recovery whose disturbance was observed (checks.from_reads sets it)
        message = outcome.message
        if not outcome.ok and self.sampler is not None and any(v is None for _, v in outcome.observed):
            why = self.sampler.last_error(probe_key(check.probe, params or {}))
            if why is not None:  # an unreadable sample is no value: say why, so a failure can be diagnosed
                message += f"; last read error (t={why[0]:.2f}s): {why[1][:300]}"
        result = ev.CheckResult(
            check=label, phase=phase, probe=probe_key(check.probe, {}), expect=expect or str(check.expect), mode=mode,
            ok=outcome.ok, message=message, observed=outcome.observed[-20:], recovery_s=outcome.recovery_s,
            back_during_s=outcome.back_during_s, anchor=anchor, outcome=outcome.outcome, disturbed_at=None if outcome.disturbed_at is None else round(outcome.disturbed_at, 4),
            disturbed_by=outcome.disturbed_by, passed_with=outcome.passed_with,
        )
        stamped = self.emit(result)
        self.results.append(stamped)
        return stamped

    def _reads(self, ref: str | dict[str, Any], params: dict[str, Any]) -> Callable[[], list[Any]]:
        """The sampler's reads of a probe (every judged probe is sampled, see _prepare_probes)."""
        sampler = self.sampler
        assert sampler is not None
        key = probe_key(ref, params)
        return lambda: sampler.reads(key)

    def _disturbance_start(self, after: str | None) -> tuple[float, str]:
        """From when a failing read counts as the fault's disturbance: reads asked for once the `after`
        fault's injection began (else the method's first injection's, else the method's start). Not once
        the injection call returned: a slow call (docker kill on a busy engine) can outlast the whole
        disturbance, a relaunch included."""
        injected = [a for a in self.active if a.took_s is not None]
        chosen = [a for a in injected if a.step == after] or injected[:1]
        if chosen:
            active = chosen[-1] if after else chosen[0]
            return round(active.injected_t or 0.0, 4), f"{active.step} injected"
        if "method" in self.phase_times:
            return self.phase_times["method"], "method start"
        return self.now(), "now"

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> RunResult:
        exp = self.experiment
        stopped: checker.Stopped | None = None  # how the lifecycle ended early, if it did
        guard = self._guard
        if self.options.progress:
            from chaos.run.progress import Progress

            self.bus.subscribe(Progress())
        self.journal.header = {
            "run_id": self.run_id, "seed": self.seed, "file": str(self.file),
            "experiment": exp.model_dump(mode="json", by_alias=True, exclude_none=True),
            "started": None,
            # every `t` (events, series) is seconds on the monotonic clock since this wall time
            "t0_wall": time.time() - self.now(),
        }
        if self.backend == "auto" and self.options.open_stack is None:
            from chaos.stack import default_backend

            self.backend = default_backend()
        self.emit(ev.RunStarted(run_id=self.run_id, title=exp.title, file=str(self.file), seed=self.seed,
                                backend=self.backend, mode=ev.ORIGIN_MODES[self.stack_origin]))
        self.journal.header["started"] = self.journal.events[0]["wall"]
        with guard:
            try:
                self.checkpoint()  # a signal before the run began (roomquake run installs the handler first thing)
                self._begin_phase("bring_up")
                self.stack = self._exits.enter_context(self._open_stack())
                self._stack_ready()
                sampler = self._prepare_probes()
                if exp.load is not None:
                    self._begin_phase("load")
                    self._load("start", **self._load_params())
                sampler.start()
                self._steady("steady_state_before")
                for watch in self._abort_watches:
                    watch.armed = True
                self._method()
                self._recovery()
                for watch in self._abort_watches:
                    watch.armed = False
                self.check_stop()
                self._steady("steady_state_after")
                self._history()
            except Deviation as dev:
                stopped = checker.Stopped(Verdict.DEVIATED, str(dev))
            except AbortRun as abort:
                stopped = checker.Stopped(Verdict.ABORTED, str(abort))
            except Interrupted as sig:
                self.stop.set()
                stopped = checker.Stopped(Verdict.ABORTED, str(sig))
                self.emit(ev.AbortTriggered(reason=str(sig)))
            except RoomquakeError as err:
                self.stop.set()
                stopped = checker.Stopped(Verdict.ERRORED, err.one_line())
                self.emit(ev.RunError(phase=self.phase, message=err.one_line()))
            except Exception as err:  # noqa: BLE001 - an internal error still rolls back and journals
                self.stop.set()
                stopped = checker.Stopped(Verdict.ERRORED, f"internal error: {type(err).__name__}: {err}")
                self.emit(ev.RunError(phase=self.phase, message=stopped.reason, detail=traceback.format_exc()))
            finally:
                with guard.deferred():
                    results = self._wind_down(stopped)
                    for name in guard.received[1:]:  # noted by the handler; journaled here, in the main thread
                        self.emit(ev.Note(message=f"{name} received: still rolling back, please wait"))
            return self._finish(results)

    def _begin_phase(self, phase: str) -> None:
        self.phase = phase
        self.phase_times[phase] = round(self.emit(ev.PhaseStarted(phase=phase)).t, 4)

    def _open_stack(self) -> contextlib.AbstractContextManager[LiveStack]:
        if self.options.ledger_dir is not None or self.options.open_stack is None:
            from chaos.stack.sweep import sweep_dead_stacks

            # What killed runs left: their rollback (ledgers) first, then the
            # stacks of dead owners (a half-up local stack, a brought-up one).
            for line in sweep_dead_runs(self.options.ledger_dir) + sweep_dead_stacks():
                self.emit(ev.Note(message=f"leftovers of a killed run: {line}"))
            self.ledger = Ledger(self.identity, self.options.ledger_dir)
        self.request = StackRequest(
            self.experiment, self.file, self.backend if self.backend not in ("auto", "attach") else None,
            self.options.attach, self.identity, self.checkpoint, self.emit, self.stack_origin)
        return (self.options.open_stack or open_stack)(self.request)

    def _stack_ready(self) -> None:
        stack = self._live()
        if self.request is not None:  # what the opener reported: a pool that started afresh, a renewed stack
            self.stack_origin, self.reset_lines = self.request.origin, list(self.request.reset_lines)
        stack.checkpoint = self.checkpoint  # its waits (load requests) notice a Ctrl-C too
        self.backend = stack.backend_kind
        image_ids = stack.image_ids()
        self.journal.header.update(backend=self.backend, image_ids=image_ids, stack_run_id=stack.run_id,
                                   stack_origin=self.stack_origin, reset=list(self.reset_lines))
        if self.ledger is not None:
            self.ledger.stack(stack.run_id, self.backend, bool(self.options.attach), stack.proxy_url)
        self.emit(ev.StackReady(backend=self.backend, instances=[i.name for i in stack.instances()],
                                image_ids=image_ids, proxy_url=stack.proxy_url,
                                attached=bool(self.options.attach), origin=self.stack_origin))
        self.scope = self._scope()
        self.fault_context = FaultContext(stack, self._make_proxy, self.rng, self.run_id, self.scope)

    def _prepare_probes(self) -> Sampler:
        """Check every probe against the stack (before any fault) and register the key probes; the run's sampler."""
        exp = self.experiment
        self.reader = ProbeReader(self._live())
        self.sampler = Sampler(self.reader, self.now, exp.sample_every, self.stop)
        plan = timeline.plan(exp.method)
        every: list[tuple[Any, dict[str, Any], float | None]] = [(c.probe, c.with_, None) for c in exp.steady_state]
        every += [(c.probe, c.with_, c.every) for c in exp.recovery]
        every += [(p.step.probe, p.step.with_, p.step.every) for p in plan if isinstance(p.step, m.CheckStep)]
        every += [(c.probe, c.with_, None) for c in exp.abort_if]
        every += [(ref, {}, None) for ref in exp.observe]
        for ref, given, rate in every:
            self.reader.check(ref)
            self.sampler.add_probe(ref, self._params(ref, given), rate)
        watch_relaunches(self.sampler, self._live().spec.probes, lambda ref: self._params(ref, {}), self.emit)
        for i, cond in enumerate(exp.abort_if):
            label = cond.id or f"abort_if[{i}] {cond.label()}"
            watch = AbortWatch(
                probe_key(cond.probe, self._params(cond.probe, cond.with_)), label, cond.expect, cond.for_,
                on_fire=self._abort_on(label), armed=False,
            )
            self._abort_watches.append(watch)
            self.sampler.watch(watch)
        return self.sampler

    def _abort_on(self, condition: str) -> Callable[[str, Any], None]:
        """What an abort condition does when it fires: abort the run, naming it."""
        def fire(reason: str, value: Any) -> None:
            self.abort(reason, observed=value, condition=condition)

        return fire

    def _load(self, action: str, **params: Any) -> None:
        self._live().load(action, **params)
        self.emit(ev.LoadChanged(action=action, params=params))

    # ------------------------------------------------------------------ phases

    def _steady(self, phase: str) -> None:
        exp = self.experiment
        if not exp.steady_state:
            return
        self._begin_phase(phase)
        anchor = self.now()

        def judge(i: int, check: m.SteadyCheck) -> ev.CheckResult:
            label = check.id or f"steady_state[{i}] {check.label()}"
            params = self._params(check.probe, check.with_)
            outcome = checks.from_reads(label, self._reads(check.probe, params), self._expect(check.expect), self.now,
                                        self.stop, since=anchor, anchor_t=anchor,
                                        deadline_s=check.within if check.within is not None else exp.settle,
                                        anchor_name=phase.replace("_", " "))
            return self._record(label, phase, check, "within", outcome, anchor, phase, params)

        results = self._wait_all([self._pool.submit(judge, i, c) for i, c in enumerate(exp.steady_state)])
        failed = [r for r in results if not r.ok]
        if failed and phase == "steady_state_before":
            raise Deviation(f"steady state did not hold before the method (method skipped): {failed[0].message}")

    def _method(self) -> None:
        plan = timeline.plan(self.experiment.method)
        if not self.experiment.method:
            return
        self._begin_phase("method")
        t0 = self.now()
        actions: list[tuple[float, int, str, list[timeline.Planned]]] = []
        due: dict[float, list[timeline.Planned]] = {}
        for p in plan:
            if p.is_fault:
                due.setdefault(p.start, []).append(p)  # faults due at one instant (a parallel group) go together
                if p.fault.for_ is not None:
                    actions.append((p.end, 0, "rollback", [p]))
            else:
                actions.append((p.start, 2, "check", [p]))
        actions += [(at, 1, "inject", group) for at, group in due.items()]
        actions.sort(key=lambda a: (a[0], a[1]))
        running: list[cf.Future[Any]] = []
        by_step: dict[str, Injection] = {}
        for at, _, kind, group in actions:
            if kind == "inject" and len(group) > 1:
                for active in self._inject_together(group, t0, at):
                    by_step[active.step] = active
                continue
            planned = group[0]
            when = t0 + self.timeline_offset() + at
            self.sleep_until(max(when, self._own_end(by_step[planned.id], planned)) if kind == "rollback" else when)
            if kind == "inject":
                self.before_fault(planned.id, planned.fault)
                active = by_step[planned.id] = self._inject(planned, t0 + self.timeline_offset())
                if planned.fault.for_ is None:
                    # an instant fault (kill...) takes effect while the call runs: its start is the anchor
                    self.step_ends[planned.id] = active.injected_t if active.injected_t is not None else self.now()
            elif kind == "rollback":
                self._roll_back(by_step[planned.id], "for elapsed")
                self.step_ends[planned.id] = self.now()
            else:
                running.append(self._pool.submit(self._method_check, planned, t0 + self.timeline_offset()))
        self._wait_all(running)
        self.sleep_until(t0 + self.timeline_offset() + timeline.length(self.experiment.method))
        self.step_ends["method"] = self.now()

    @staticmethod
    def _own_end(active: Injection, planned: timeline.Planned) -> float:
        """A rollback's earliest time: its fault fully in effect (injection done) for its whole ``for``.

        The timeline puts the rollback at the planned start plus ``for``; an
        injection that began late or took long (a loaded machine, a slow
        engine) would otherwise leave the fault active for less than declared.
        Only this rollback moves; steps after it in the list wait for it, none is planned anew.
        """
        if active.injected_t is None or planned.fault.for_ is None:
            return 0.0
        return active.injected_t + (active.took_s or 0.0) + planned.fault.for_

    def _begin(self, planned: timeline.Planned) -> Injection:
        step = planned.fault
        params = step.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"fault", "id", "description"})
        active = Injection(planned.id, step.fault, params)
        self.active.append(active)  # registered before injecting: a half-done step is still rolled back
        return active

    def _registrar(self, active: Injection) -> Registrar:
        def done(hit: str, undo: tuple[str, ...] | None) -> None:
            active.register(hit, undo)
            if undo is None or self.ledger is None:
                return
            with self._ahead_lock:
                if undo in self._written_ahead:  # in the ledger already, since before its part acted
                    self._written_ahead.remove(undo)
                    return
            self.ledger.add(undo)

        return done

    def _ahead(self, undo: tuple[str, ...]) -> None:
        """A part's undo in the ledger before the part acts (``Part.ahead``), once."""
        if self.ledger is None:
            return
        with self._ahead_lock:
            self._written_ahead.append(undo)
        self.ledger.add(undo)

    def _injected(self, planned: timeline.Planned, active: Injection, t0: float, began: float, ended: float) -> None:
        active.injected_t, active.took_s = began, round(ended - began, 4)
        self.emit(ev.FaultInjected(step=planned.id, fault=active.fault, hit=active.hit, params=active.params,
                                   planned_at=round(t0 + planned.start, 4), began=round(began, 4), took_s=active.took_s))

    def _inject(self, planned: timeline.Planned, t0: float) -> Injection:
        active = self._begin(planned)
        began = active.injected_t = self.now()
        assert self.fault_context is not None
        faults.inject(planned.fault, planned.id, self.fault_context, self._registrar(active), self._ahead)
        self._injected(planned, active, t0, began, self.now())
        return active

    # Targets of a group are resolved this long before its start time, so that
    # resolving (probes, selectors, clients) is not part of the spread.
    GROUP_LEAD_S = 0.3

    def _inject_together(self, group: list[timeline.Planned], t0: float, at: float) -> list[Injection]:
        """Faults due at one instant: prepared before it, then every part started at once, one thread each.

        The spread of their start times (and of their ends) is journaled.
        """
        self.sleep_until(t0 + self.timeline_offset() + at - self.GROUP_LEAD_S)
        for planned in group:
            self.before_fault(planned.id, planned.fault)
        assert self.fault_context is not None
        prepared = []
        for planned in group:
            active = self._begin(planned)
            parts = faults.prepare(planned.fault, planned.id, self.fault_context)
            prepared.append((planned, active, parts))
        self.sleep_until(t0 + self.timeline_offset() + at)
        jobs = [(active, part) for _, active, parts in prepared for part in parts]
        barrier = threading.Barrier(max(1, len(jobs)))  # fire() runs only with jobs
        times: dict[int, tuple[float, float]] = {}

        def fire(n: int, active: Injection, part: Part) -> None:
            if part.ahead is not None:  # written before the barrier: no file write between it and the act
                self._ahead(part.ahead)
            try:
                barrier.wait(timeout=10)  # every thread is ready: go together
            except threading.BrokenBarrierError:
                pass
            began = self.now()
            try:
                undo = part.do()
            except BaseException:
                if part.ahead is not None:  # rolled back in process too (see chaos.faults.base.run_parts)
                    self._registrar(active)(part.hit, part.ahead)
                raise
            finally:
                times[n] = (began, self.now())
            self._registrar(active)(part.hit, undo)

        # One thread per part (not the check pool: it may be busy, and every part must be ready at the barrier).
        with cf.ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="inject") as together:
            futures = [together.submit(fire, n, active, part) for n, (active, part) in enumerate(jobs)]
            # Not interruptible: a part under way must be registered before any rollback starts (each is bounded).
            cf.wait(futures)
        starts = [times[n][0] for n in sorted(times)]
        ends = [times[n][1] for n in sorted(times)]
        for planned, active, _ in prepared:
            mine = [times[i] for i, (a, _) in enumerate(jobs) if a is active and i in times]
            began = min((b for b, _ in mine), default=self.now())
            self._injected(planned, active, t0, began, max((e for _, e in mine), default=began))
            if planned.fault.for_ is None:
                self.step_ends[planned.id] = began
        if starts:
            steps = [p.id for p in group]
            start_spread, end_spread = round(max(starts) - min(starts), 4), round(max(ends) - min(ends), 4)
            self.parallel.append({"steps": steps, "planned_at": round(t0 + at, 4), "start_spread_s": start_spread,
                                  "end_spread_s": end_spread, "parts": len(jobs)})
            self.emit(ev.Note(message=f"faults {', '.join(steps)} started within {start_spread:.3f}s "
                                      f"of each other ({len(jobs)} parts; done within {end_spread:.3f}s)"))
        for future in futures:
            future.result()  # the first failure of a part, now that every part is registered
        return [active for _, active, _ in prepared]

    def _roll_back(self, active: Injection, reason: str) -> None:
        if active.rolled_back:
            return
        assert self.fault_context is not None
        errors = roll_back(active, self.fault_context, self.now, undone=self.ledger.done if self.ledger is not None else None)
        ended = active.rolled_back_t if active.rolled_back_t is not None else self.now()  # roll_back set it
        started = active.injected_t if active.injected_t is not None else ended
        self.emit(ev.FaultRolledBack(step=active.step, fault=active.fault, hit=active.hit,
                                     reason="nothing to undo" if active.one_shot else reason,
                                     ok=not errors, error="; ".join(errors) or None,
                                     active_s=round(ended - started, 4)))

    def _method_check(self, planned: timeline.Planned, t0: float) -> ev.CheckResult:
        step = planned.check
        label = planned.id
        params = self._params(step.probe, step.with_)
        if step.within is not None:
            # the effect must show within the deadline: the first pass read after the check's start (no recovery time)
            anchor = self.now()
            outcome = checks.from_reads(label, self._reads(step.probe, params), self._expect(step.expect), self.now,
                                        self.stop, since=anchor, anchor_t=anchor, deadline_s=step.within,
                                        anchor_name=f"t={anchor:.2f}s")
            return self._record(label, "method", step, "within", outcome, anchor, label, params)
        if step.throughout is not None or step.during is not None:
            watch = Watch(probe_key(step.probe, params), self._expect(step.expect), t0 + planned.start, t0 + planned.end)
            assert self.sampler is not None
            self.sampler.watch(watch)
            while self.now() < watch.end and not self.stop.is_set():
                self.stop.wait(min(0.1, max(0.0, watch.end - self.now())))
            what = f"while {step.during} is active" if step.during else f"throughout {format_duration(step.throughout or 0)}"
            return self._record(label, "method", step, "throughout", checks.window(label, watch, what), params=params)
        return self._record(label, "method", step, "once", checks.once(label, self._reader(step.probe, params),
                                                                        self._expect(step.expect), self.now), params=params)

    def _recovery(self) -> None:
        exp = self.experiment
        if not exp.recovery:
            return
        self._begin_phase("recovery")

        def judge(i: int, check: m.RecoveryCheck) -> ev.CheckResult:
            label = check.id or f"recovery[{i}] {check.label()}"
            anchor_name = check.after or "method"
            anchor_t = self.step_ends.get(anchor_name, self.step_ends.get("method", self.now()))
            anchor_text = f"{check.after} ending" if check.after else "method end"
            params = self._params(check.probe, check.with_)
            if check.within is not None:
                since, since_name = self._disturbance_start(check.after)
                reads = self._reads(check.probe, params)
                expect = checks.rise_from(label, self._expect(check.expect), reads(), since, since_name)
                if isinstance(expect, checks.Outcome):
                    return self._record(label, "recovery", check, "within", expect, anchor_t, anchor_text, params)
                outcome = checks.from_reads(label, reads, expect, self.now,
                                            self.stop, since=since, anchor_t=anchor_t, deadline_s=check.within,
                                            anchor_name=anchor_text, disturbance=True, since_name=since_name,
                                            undisturbed_ok=check.undisturbed == "pass")
                return self._record(label, "recovery", check, "within", outcome, anchor_t, anchor_text, params,
                                    expect=str(expect) if check.expect.op == "rises_by" else None)
            watch = Watch(probe_key(check.probe, params), self._expect(check.expect), anchor_t, anchor_t + (check.throughout or 0))
            assert self.sampler is not None
            self.sampler.watch(watch)
            with self.sampler.series.lock:  # samples already taken since the anchor count too
                earlier = [s for s in self.sampler.series.data.get(watch.key, []) if s[0] >= anchor_t]
            for t, value in earlier:
                watch.feed(t, value)
            while self.now() < watch.end and not self.stop.is_set():
                self.stop.wait(min(0.1, max(0.0, watch.end - self.now())))
            what = f"throughout {format_duration(check.throughout or 0)} from {anchor_text}"
            return self._record(label, "recovery", check, "throughout", checks.window(label, watch, what), params=params)

        self._wait_all([self._pool.submit(judge, i, c) for i, c in enumerate(exp.recovery)])

    def _room(self) -> str:
        """The room whose histories and relaunches are read: the history's, else the run's load's, else the stack
        file's load start action's."""
        exp = self.experiment
        if exp.history is not None and exp.history.room:
            return exp.history.room
        return str({**self._declared("load", "start"), **self.scope}.get("room", ""))

    def _read_history(self, settle: bool = False) -> histories.Collected:
        """Read and check the listeners' histories; with ``settle``, not before the newest relaunch in them
        is ``back_within`` old (default 10 s): listeners still on their way back are not yet 'never back'."""
        spec = self.experiment.history
        back = sorted({DEFAULT_BACK_WITHIN_S, *([spec.back_within.seconds] if spec and spec.back_within else [])})
        collected = histories.collect(self._live(), self._room(), back)
        if settle and collected.report is not None and collected.report.relaunches:
            grace = spec.back_within.seconds if spec and spec.back_within else DEFAULT_BACK_WITHIN_S
            left = max(r.at for r in collected.report.relaunches) + grace - time.time()
            if left > 0:
                self.emit(ev.Note(message=f"history: waiting {left:.1f}s, until the last relaunch is {format_duration(grace)} old"))
                self.sleep_until(self.now() + left)
                collected = histories.collect(self._live(), self._room(), back)
        report = collected.report
        if report is not None:
            self.emit(ev.HistoryChecked(
                room=report.room, listeners=report.listeners, max_gap_p99_s=report.max_gap_p99_s,
                never_heard_relaunch=report.never_heard_count, split_brain=report.split_brain_count,
                duplicates=report.duplicates, out_of_order=report.out_of_order,
                back_within=[{"generation": r.generation, "listeners": r.listeners, "fractions": r.back_within}
                             for r in report.relaunches],
                errors=collected.errors))
        return collected

    def _history(self) -> None:
        """Judge the experiment's ``history:`` assertions on every listener's history, read now."""
        spec = self.experiment.history
        if spec is None:
            return
        self._begin_phase("history")
        self.history = collected = self._read_history(settle=True)
        for judged in histories.judge(spec, collected):
            stamped = self.emit(ev.CheckResult(
                check=judged.check, phase="history", probe=f"history{{room={collected.room}}}", expect=judged.expect,
                mode="history", ok=judged.ok, message=judged.message, observed=[(round(self.now(), 4), judged.value)],
            ))
            self.results.append(stamped)

    def _fault_windows(self) -> list[FaultWindow]:
        """When each fault was active: from its injection to its rollback; a one-shot fault with nothing to
        undo (surge, drain) only while it was being injected (what it set off afterwards is the system's doing)."""
        windows = []
        for a in self.active:
            if a.injected_t is None:
                continue
            end = a.injected_t + (a.took_s or 0.0) if a.one_shot else a.rolled_back_t
            windows.append(FaultWindow(a.step, a.injected_t, end))
        return windows

    def _audit_relaunches(self) -> None:
        """Read the room's relaunch records and attribute each to the faults active when its failure began."""
        if self.stack is None:
            return
        try:
            if self.history is None and histories.declared(self.stack):
                self.history = self._read_history()  # for the journal and the report, judged or not
            room = self._room()
            records, errors = histories.fetch_relaunches(self.stack, room)  # afresh: relaunches during the rollback count too
            if records is None:
                self.relaunch_audit = ev.RelaunchesAudited(room=room, relaunches=[], unexpected=None, errors=errors)
            else:
                found = attribute(records, self._fault_windows(), float(self.journal.header.get("t0_wall") or 0.0))
                self.relaunch_audit = ev.RelaunchesAudited(room=room, relaunches=[f.to_json() for f in found],
                                                           unexpected=sum(1 for f in found if f.unexpected), errors=errors)
            self.relaunch_audit = self.emit(self.relaunch_audit)
        except Exception as err:  # noqa: BLE001 - an audit that cannot be done is said, never fatal
            self.emit(ev.Note(message=f"relaunch audit failed: {type(err).__name__}: {err}"))

    # ------------------------------------------------------------------ the end, on every path

    def _wind_down(self, stopped: checker.Stopped | None) -> checker.Results:
        """Roll back every fault, audit, tear down and verify: gathers what the verdict is judged from."""
        self.stop.set()  # workers and waits end now
        if self.active:
            self._begin_phase("rollback")
            for active in reversed(self.active):
                try:
                    self._roll_back(active, "end of run")
                except BaseException as err:  # noqa: BLE001 - every other fault still gets its rollback
                    self.emit(ev.RunError(phase="rollback", message=f"{active.step}: {err}"))
        if self.sampler is not None:
            self.sampler.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._audit_relaunches()  # while the stack is still up, on every path
        self._keep_logs(stopped)
        teardown_error, leftovers = None, None
        if self.stack is not None:
            self._begin_phase("teardown")
            try:
                self._exits.close()
            except BaseException as err:  # noqa: BLE001
                teardown_error = str(err)
                self.emit(ev.RunError(phase="teardown", message=f"teardown failed: {err}"))
            leftovers = self._verify_teardown()
        if self.ledger is not None and all(a.rolled_back and not a.rollback_errors for a in self.active):
            self.ledger.close()  # everything undone: nothing for a later sweep
        rollbacks = sorted((a for a in self.active if a.rolled_back), key=lambda a: a.rolled_back_t or 0.0)
        weakness = self.experiment.known_weakness
        return checker.Results(
            stopped=stopped, assertions=list(self.results),
            rollbacks=[checker.Rollback(a.step, a.rollback_errors) for a in rollbacks],
            teardown_error=teardown_error, leftovers=leftovers,
            known_weakness=weakness.deviates if weakness is not None else None,
        )

    def _keep_logs(self, stopped: checker.Stopped | None) -> None:
        """A run that did not pass keeps each instance's last lines beside its journal (the stack is about to
        go, and with it what its services said about the failure): ``<run id>.logs/<instance>.log``."""
        if self.stack is None or (stopped is None and all(r.ok for r in self.results)):
            return
        folder = self.journal.path.with_name(f"{self.run_id}.logs")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for instance in self.stack.instances():
                text = self.stack.log_text(instance.name, KEPT_LOG_LINES)
                if text:
                    (folder / f"{instance.name}.log").write_text(text if text.endswith("\n") else text + "\n")
        except Exception as err:  # noqa: BLE001 - keeping logs is a courtesy: never fatal
            self.emit(ev.Note(message=f"service logs not kept: {type(err).__name__}: {err}"))
            return
        self.kept_logs = folder
        self.emit(ev.Note(message=f"service logs (last {KEPT_LOG_LINES} lines of each instance): {folder}"))

    def _verify_teardown(self) -> checker.Leftovers | None:
        """A stack this run took down must be gone; otherwise the run says what is left and how to remove it."""
        stack = self._live()
        if not stack.torn_down:
            return None  # attached or pooled: left up on purpose
        try:
            left = stack.leftovers()
        except Exception as err:  # noqa: BLE001 - not verified is not clean
            left = [f"unknown ({err})"]
        found = checker.Leftovers(str(stack.run_id), left)
        if left:
            self.emit(ev.RunError(phase="teardown", message=found.message()))
        else:
            self.emit(ev.Note(message=f"teardown verified: nothing of stack {stack.run_id} is left"))
        return found

    def _finish(self, results: checker.Results) -> RunResult:
        judged = checker.judge(results)
        self.emit(ev.VerdictReached(verdict=judged.verdict.value, reason=judged.reason, exit_code=judged.exit_code,
                                    as_declared=judged.as_declared))
        records = [
            {"step": a.step, "fault": a.fault, "hit": a.hit, "params": a.params,
             "injected_t": None if a.injected_t is None else round(a.injected_t, 4),
             "rolled_back_t": None if a.rolled_back_t is None else round(a.rolled_back_t, 4)}
            for a in self.active
        ]
        # recovery times of disturbed checks only; the undisturbed ones are listed apart (they measured nothing)
        recovery = {r.check: r.recovery_s for r in self.results if r.recovery_s is not None and r.ok}
        back_during = {r.check: r.back_during_s for r in self.results if r.back_during_s is not None and r.ok}
        undisturbed = [r.check for r in self.results if r.outcome == "not_disturbed"]
        path = self.journal.write(
            verdict=judged.verdict.value, reason=judged.reason, exit_code=judged.exit_code, as_declared=judged.as_declared,
            ended=self.journal.events[-1]["wall"], duration_s=round(self.now(), 4),
            sample_every=self.experiment.sample_every,
            assertions=[r.to_json() for r in self.results], recovery_times=recovery, back_during=back_during,
            not_disturbed=undisturbed, faults=records,
            series=self.sampler.series.to_json() if self.sampler else {},
            probe_errors=dict(self.reader.errors) if self.reader else {},
            probe_error_log=self.sampler.error_log if self.sampler else {},
            parallel=self.parallel,
            history=self.history.to_json() if self.history else None,
            relaunches=self.relaunch_audit.relaunches if self.relaunch_audit else None,
            unexpected_relaunches=self.relaunch_audit.unexpected if self.relaunch_audit else None,
            service_logs=str(self.kept_logs) if self.kept_logs else None,
        )
        return RunResult(self.run_id, judged.verdict, judged.reason, judged.exit_code, path, self.seed,
                         judged.as_declared, list(self.results))
