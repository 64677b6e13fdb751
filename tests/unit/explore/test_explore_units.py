"""chaos.explore with a fake system under test: space, strategy, search and shrink, reruns, file, journal.

The real stack: tests/local/explore/test_explore_local.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cli.checking import check
from chaos.errors import UsageError
from chaos.explore.base import BaseInvalid, load_base
from chaos.explore.confirm import confirm
from chaos.explore.schedule import Limits, Planned, Schedule
from chaos.explore.search import search
from chaos.explore.session import explore
from chaos.explore.space import Atom, build_space
from chaos.explore.trial import Outcome, Trial
from chaos.stack import load_stack

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
BASE = f"""\
title: Base - the room stays live and the crowd comes back, whatever happens
stack: {STACK}
profile: ci
scale: {{edge: 3, supervisor: 4}}
load: {{room: launch, listeners: 20, ramp: 1s}}
settle: 20s
steady_state:
  - {{id: room-live, probe: room.state, expect: live}}
method:
  - {{id: quiet, probe: crowd.connected_ratio, expect: ">= 0.9", throughout: 2s}}
recovery:
  - {{id: listeners-back, probe: crowd.connected_ratio, expect: ">= 0.9", within: 15s, undisturbed: pass}}
"""


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    return path


class FakeSystem:
    """Fails a schedule that resets the crowd's links to an edge (the bug); each run costs ``cost`` seconds of a fake clock."""

    def __init__(self, cost: float = 30.0, bug: str | None = "reset_peer crowd->edge", flaky: bool = False) -> None:
        self.t = 0.0
        self.cost = cost
        self.bug = bug
        self.flaky = flaky
        self.runs: list[Schedule] = []

    def clock(self) -> float:
        return self.t

    def fails(self, schedule: Schedule) -> bool:
        hit = self.bug is not None and any(p.atom.label.startswith(self.bug) for p in schedule.faults)
        if self.flaky:  # fails only the first time a schedule is run
            return hit and schedule not in self.runs[:-1]
        return hit

    def __call__(self, base: object, schedule: Schedule, seed: int) -> Trial:
        self.runs.append(schedule)
        self.t += self.cost
        failed = self.fails(schedule)
        return Trial(schedule, Outcome.FAILED if failed else Outcome.PASSED,
                     "listeners-back failed" if failed else "all assertions held", "journal.json",
                     ("listeners-back",) if failed else (), self.cost)


def _space(faults: list[str] | None = None):
    return build_space(load_stack(STACK).spec, "local", {"edge": 3, "supervisor": 4}, faults)


# --------------------------------------------------------------------------- space


def test_the_space_leaves_out_the_proxy_and_the_load_generator_and_what_the_backend_cannot_do():
    space = _space()
    labels = [a.label for a in space.atoms]
    assert labels[0] == "kill state-1"  # the plainest first: shrinking moves towards it
    assert not any(x.endswith((" proxy-1", " crowd-1")) for x in labels)
    assert not any(x.startswith(("disconnect", "squeeze", "node_")) for x in labels)  # containers / swarm only
    assert "reset_peer crowd->edge" in labels and "reset_peer crowd->edge-2" in labels
    assert "kill <hosting>" in labels
    hosting = next(a for a in build_space(load_stack(STACK).spec, "local", {}, ["kill"], room="launch").atoms
                   if a.label == "kill <hosting>")
    assert hosting.place == {"target": {"select": {"name": "hosting", "room": "launch"}}}  # renamed with a pooled room
    assert [x for x in space.excluded] == ["proxy (the fault proxy)", "crowd (the load generator)"]
    docker = [a.label for a in build_space(load_stack(STACK).spec, "docker", {"edge": 3}).atoms]
    assert "disconnect edge-1" in docker


def test_the_space_is_narrowed_by_kind_and_an_unknown_kind_is_one_line():
    assert {a.fault for a in _space(["pause", "latency"]).atoms} == {"pause", "latency"}
    with pytest.raises(UsageError, match=r"^explore: unknown fault kind explode \(known: .*kill"):
        _space(["explode"])


def test_a_planned_fault_is_a_valid_method_step():
    atom = next(a for a in _space(["latency"]).atoms if a.label == "latency crowd->edge")
    step = Planned(atom, at=15, for_=20, level=1).step("fault-1")
    assert step == {"id": "fault-1", "at": "1.5s", "fault": "latency", "link": "crowd->edge", "latency": "1s", "for": "2s"}


def test_a_schedule_has_one_spelling_whatever_the_order_of_its_faults():
    a, b = _space(["kill"]).atoms[:2]
    one = Schedule((Planned(a, 30, 10), Planned(b, 0, 10)))
    two = Schedule((Planned(b, 0, 10), Planned(a, 30, 10)))
    assert one.key() == two.key()
    assert [s["at"] for s in one.method()] == ["0ms", "3s"]
    assert one.overlaps() == 0 and Schedule((Planned(a, 0, 40), Planned(b, 10, 10))).overlaps() == 1


def test_a_schedule_that_takes_every_instance_of_a_service_down_at_once_is_told():
    space = build_space(load_stack(STACK).spec, "local", {"edge": 2, "supervisor": 2}, ["kill", "restart", "latency"])
    atom = {a.label: a for a in space.atoms}
    assert dict(space.redundant) == {"edge": 2, "supervisor": 2, "host": 2}  # control and state have one instance
    hosts = dict(space.redundant)
    both = Schedule((Planned(atom["kill host-1"], 0, 30), Planned(atom["kill host-2"], 20, 30)))
    assert both.loses_all(hosts) == "host"
    # a restart counts as down for 1 s (it holds nothing for its 'for')
    one_after_the_other = Schedule((Planned(atom["restart host-2"], 0, 50), Planned(atom["kill host-1"], 10, 80)))
    assert one_after_the_other.loses_all(hosts) is None
    assert Schedule((Planned(atom["restart host-2"], 0, 50), Planned(atom["kill host-1"], 9, 80))).loses_all(hosts) == "host"
    # however short its 'for': the instance is back when the restart returns, up to a second later
    assert Schedule((Planned(atom["restart host-2"], 0, 5), Planned(atom["kill host-1"], 5, 80))).loses_all(hosts) == "host"
    # a selector's instance is known only at run time: it counts as one more down in the service it picks
    # (hosting: an edge, says the stack file), or in every service when the stack file names none
    selected = Schedule((Planned(atom["kill <hosting>"], 0, 30), Planned(atom["kill edge-1"], 0, 30)))
    assert selected.loses_all(hosts) == "edge"
    assert Schedule((Planned(atom["kill <hosting>"], 0, 30), Planned(atom["kill host-1"], 0, 30))).loses_all(hosts) is None
    anyone = Atom("kill", {"target": {"select": {"name": "anyone"}}}, "kill <anyone>")
    assert Schedule((Planned(anyone, 0, 30), Planned(atom["kill host-1"], 0, 30))).loses_all(hosts) == "host"
    # link faults take no instance down; nor do faults on another service, or one instance twice
    assert Schedule((Planned(atom["latency host->edge"], 0, 30), Planned(atom["kill host-1"], 0, 30))).loses_all(hosts) is None
    assert Schedule((Planned(atom["kill host-1"], 0, 30), Planned(atom["restart host-1"], 0, 30))).loses_all(hosts) is None


def test_a_selector_that_picks_a_service_left_out_is_left_out():
    spec = load_stack(STACK).spec
    assert {a.label for a in build_space(spec, "local", {}, ["kill"], services=["host"]).atoms} == {"kill host-1", "kill host-2"}
    edges = {a.label: a.picks for a in build_space(spec, "local", {"edge": 2}, ["kill"], services=["edge"]).atoms}
    assert edges == {"kill edge-1": None, "kill edge-2": None, "kill <hosting>": "edge"}


def test_the_search_never_draws_a_total_loss_unless_asked(base_file: Path):
    from hypothesis import given, settings
    from chaos.explore.strategy import schedules

    space = build_space(load_stack(STACK).spec, "local", {"edge": 2, "supervisor": 2}, ["kill"], services=["host"])
    redundant = dict(space.redundant)
    drawn: list[Schedule] = []

    @settings(max_examples=60, database=None, deadline=None)
    @given(schedules(space, Limits(max_faults=2, horizon=1.0, max_for=2.0)))
    def default(schedule: Schedule) -> None:
        drawn.append(schedule)
        assert schedule.loses_all(redundant) is None

    default()
    lost: list[Schedule] = []

    @settings(max_examples=60, database=None, deadline=None)
    @given(schedules(space, Limits(max_faults=2, horizon=1.0, max_for=2.0, total_loss=True)))
    def total(schedule: Schedule) -> None:
        if schedule.loses_all(redundant):
            lost.append(schedule)

    total()
    assert drawn and lost  # the rule is what keeps them out


# --------------------------------------------------------------------------- base


def test_the_base_loses_its_method_and_a_check_that_refers_to_it_is_refused(base_file: Path, tmp_path: Path):
    base = load_base(base_file, "local")
    assert base.dropped_steps == 1 and base.experiment.method == []
    refers = tmp_path / "refers.yaml"
    refers.write_text(BASE.replace("throughout: 2s}", "throughout: 2s}\n  - {id: k, fault: kill, target: {service: edge}}")
                      .replace("undisturbed: pass}", "undisturbed: pass, after: k}"))
    with pytest.raises(BaseInvalid, match=r"refers\.yaml:13:\d+: recovery\[0\]\.after: .*explore replaces the base's method"):
        load_base(refers, "local")


def test_an_invalid_base_is_one_line_with_file_line_and_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("probe: room.state", "probe: room.stat"))
    with pytest.raises(BaseInvalid, match=r"bad\.yaml:\d+:\d+: steady_state\[0\]\.probe: no probe 'room.stat'"):
        load_base(bad, "local")


# --------------------------------------------------------------------------- search and shrink


def _search(base_file: Path, system: FakeSystem, budget: float = 3000, faults=("kill", "pause", "reset_peer"),
            database: Path | None = None, seed: int = 5, small_first: float = 0.5, space=None):
    base = load_base(base_file, "local")
    return search(base, space or _space(list(faults)), Limits(), system, seed, budget, budget, database, clock=system.clock,
                  small_first_share=small_first)


@pytest.mark.parametrize("small_first", [0.5, 0.0], ids=["small-first", "hypothesis-only"])
def test_a_failure_is_found_and_shrunk_to_one_fault_at_the_start_for_the_shortest_time(base_file: Path,
                                                                                       small_first: float):
    system = FakeSystem()
    result = _search(base_file, system, small_first=small_first)
    assert {r.drawn for r in result.ran} == ({"small-first"} if small_first else {"hypothesis"})
    assert result.smallest is not None
    smallest = result.smallest.schedule
    assert len(smallest.faults) == 1
    (fault,) = smallest.faults
    assert fault.atom.label == "reset_peer crowd->edge"  # the whole link: simpler than one of its proxies
    assert (fault.at, fault.for_) == (0, 5)
    path = result.shrink_path
    assert path[0].trial.outcome is Outcome.FAILED and path[-1].trial.schedule.key() != path[0].trial.schedule.key() or len(path) == 1
    assert {r.trial.outcome for r in path} <= {Outcome.FAILED, Outcome.PASSED}
    assert len({r.trial.schedule.key() for r in result.ran}) == len(result.ran)  # no schedule ran twice


def test_a_healthy_system_reports_nothing_and_the_budget_bounds_the_runs(base_file: Path):
    system = FakeSystem(cost=30, bug=None)
    result = _search(base_file, system, budget=600)
    assert result.smallest is None and result.shrink_path == []
    assert 1 <= len(system.runs) <= 600 / 30 + 1
    assert result.stopped == "budget spent, no failure"
    # the small-first pass takes its share (half), plainest first, then Hypothesis draws
    drawn = [r.drawn for r in result.ran]
    assert drawn == ["small-first"] * 10 + ["hypothesis"] * (len(drawn) - 10) and len(drawn) > 10
    space = _space(["kill", "pause", "reset_peer"])
    assert [r.trial.schedule.faults[0].atom for r in result.ran[:10]] == list(space.atoms[:10])


class OrderedPairBug(FakeSystem):
    """Fails only when the backup host (host-2) is restarted and the primary (host-1) is killed afterwards."""

    def fails(self, schedule: Schedule) -> bool:
        restarts = [p.at for p in schedule.faults if p.atom.label == "restart host-2"]
        kills = [p.at for p in schedule.faults if p.atom.label == "kill host-1"]
        return any(r < k for r in restarts for k in kills)


def test_the_small_first_pass_finds_an_ordered_pair_and_moves_its_second_fault_as_early_as_it_still_fails(
        base_file: Path):
    space = build_space(load_stack(STACK).spec, "local", {"edge": 3, "supervisor": 4}, ["kill", "restart"],
                        services=["host", "edge"])
    system = OrderedPairBug(cost=20)
    result = _search(base_file, system, budget=20_000, space=space, seed=7)  # pairs: every ordered two of 14 atoms
    assert result.smallest is not None and result.stopped == "failure found by the small-first pass and shrunk"
    labels = [(p.atom.label, p.at) for p in result.smallest.schedule.ordered()]
    # the restart of host-2 counts as down for 1 s: the kill of host-1 may not start before it ends
    assert labels == [("restart host-2", 0), ("kill host-1", 10)]
    singles = [r for r in result.ran if len(r.trial.schedule.faults) == 1 and r.phase == "search"]
    assert len(singles) == len(space.atoms)  # every fault alone before any pair
    path = result.shrink_path
    assert path[0].trial.schedule.ordered()[1].at == 80  # the pair as first drawn: the second at the horizon
    # each fault alone at its time: the restart at 0 s had run alone already (no schedule runs twice)
    assert [(r.trial.schedule.describe(), r.trial.outcome) for r in path if len(r.trial.schedule.faults) == 1] == [
        ("kill host-1 at 8s for 0.5s", Outcome.PASSED)]
    assert [r.trial.schedule.ordered()[1].at for r in path if len(r.trial.schedule.faults) == 2] == [80, 40, 20, 10]
    assert len({r.trial.schedule.key() for r in result.ran}) == len(result.ran)
    assert all(r.trial.schedule.loses_all(dict(space.redundant)) is None for r in result.ran)


def test_a_pair_is_not_tried_when_schedules_have_one_fault(base_file: Path):
    from chaos.explore.systematic import schedules

    space = _space(["kill", "pause"])
    assert all(len(s.faults) == 1 for s in schedules(space, Limits(max_faults=1), seed=1))
    two = list(schedules(space, Limits(max_faults=2), seed=1))
    again = list(schedules(space, Limits(max_faults=2), seed=1))
    other = list(schedules(space, Limits(max_faults=2), seed=2))
    assert [s.key() for s in two] == [s.key() for s in again] != [s.key() for s in other]  # the seed orders the pairs


def test_the_same_seed_draws_the_same_schedules(base_file: Path):
    first, second = FakeSystem(bug=None), FakeSystem(bug=None)
    _search(base_file, first, budget=300, seed=11)
    _search(base_file, second, budget=300, seed=11)
    assert [s.key() for s in first.runs] == [s.key() for s in second.runs]


@pytest.mark.parametrize("small_first", [0.5, 0.0], ids=["small-first", "hypothesis-only"])
def test_the_example_database_replays_the_failure_first(base_file: Path, tmp_path: Path, small_first: float):
    db = tmp_path / "db"
    _search(base_file, FakeSystem(), database=db, seed=1, small_first=small_first)
    again = FakeSystem()
    result = _search(base_file, again, database=db, seed=2, small_first=small_first)
    assert again.fails(again.runs[0])  # the stored failure, before anything new is drawn
    assert result.smallest is not None and len(result.smallest.schedule.faults) == 1
    assert result.ran[0].drawn == ("stored" if small_first else "hypothesis")


# --------------------------------------------------------------------------- reruns


def test_a_failure_that_passes_when_run_again_is_flaky_not_found(base_file: Path):
    system = FakeSystem(flaky=True)
    result = _search(base_file, system)
    assert result.smallest is not None
    confirmation = confirm(load_base(base_file, "local"), result.smallest.schedule, system, 5, 3)
    assert (confirmation.status, confirmation.failed, confirmation.summary()) == ("flaky", 0, "failed 0/3 reruns")


def test_a_failure_that_fails_every_rerun_is_found(base_file: Path):
    system = FakeSystem()
    result = _search(base_file, system)
    assert result.smallest is not None
    confirmation = confirm(load_base(base_file, "local"), result.smallest.schedule, system, 5, 3)
    assert (confirmation.status, confirmation.summary()) == ("found", "failed 3/3 reruns")


# --------------------------------------------------------------------------- the whole exploration


class Collect:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def started(self, report) -> None: self.lines.append("started")
    def ran(self, ran, report) -> None: self.lines.append(f"ran {ran.n} {ran.trial.outcome.value}")
    def rerun(self, n, trial, report) -> None: self.lines.append(f"rerun {n} {trial.outcome.value}")
    def note(self, line: str) -> None: self.lines.append(f"note {line}")


def _explore(base_file: Path, tmp_path: Path, system: FakeSystem, run_one=None):
    return explore(base_file, 3000, backend="local", seed=3, out_dir=tmp_path / "explored",
                   journal_dir=tmp_path / "journals", faults=["kill", "pause", "reset_peer"],
                   run_one=run_one or system, display=Collect(), clock=system.clock)


def test_explore_writes_the_smallest_failure_as_an_experiment_that_validates(base_file: Path, tmp_path: Path):
    report = _explore(base_file, tmp_path, FakeSystem())
    assert report.status == "found" and report.written is not None
    assert report.written.parent == tmp_path / "explored" and report.written.name == "reset-peer-crowd-edge.yaml"
    text = report.written.read_text()
    assert text.startswith("# Found by roomquake explore") and "seed 3" in text and "failed 3/3 reruns" in text
    assert "--seed 3 --budget 3000s --backend local --max-faults 3 --horizon 8s --min-for 500ms --max-for 8s --faults kill,pause,reset_peer" in text
    checked = check(report.written, "local")  # what `roomquake validate` does
    assert checked.problems == [] and checked.experiment is not None
    exp = checked.experiment
    assert exp.seed == 3 and "explored" in exp.tags and len(exp.method) == 1
    assert exp.method[0].fault == "reset_peer" and exp.recovery[0].id == "listeners-back"
    journal = json.loads(report.journal.read_text())
    assert journal["status"] == "found" and journal["reruns_failed"] == 3 and journal["written"] == str(report.written)
    assert journal["runs"][0]["n"] == 1 and journal["smallest"]["method"][0]["fault"] == "reset_peer"


def test_explore_on_a_healthy_system_writes_nothing(base_file: Path, tmp_path: Path):
    report = _explore(base_file, tmp_path, FakeSystem(bug=None))
    assert report.status == "nothing" and report.written is None and not (tmp_path / "explored").exists()
    assert json.loads(report.journal.read_text())["status"] == "nothing"


def test_an_interrupted_exploration_keeps_what_it_found_without_rerunning(base_file: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    from chaos.signals import INTERRUPTS

    system = FakeSystem()

    def run_then_interrupt(base, schedule, seed):
        trial = system(base, schedule, seed)
        if trial.outcome is Outcome.FAILED:
            monkeypatch.setattr(INTERRUPTS, "received", ["SIGINT"])
        return trial

    report = _explore(base_file, tmp_path, system, run_one=run_then_interrupt)
    assert report.search is not None and report.search.interrupted
    assert report.confirmation is None and report.status == "unconfirmed"
    assert report.written is not None and report.written.exists()  # kept


def test_the_live_panel_shows_counts_time_left_the_best_failure_and_the_shrink_path(base_file: Path, tmp_path: Path):
    import io

    from rich.console import Console

    from chaos.explore.display import LivePanel

    system = FakeSystem()
    console = Console(file=io.StringIO(), width=160, record=True)
    panel = LivePanel(console=console, clock=system.clock)
    seen: list[dict[str, str]] = []

    def run_one(base, schedule, seed):
        seen.append(panel.counts())  # what the panel shows while this run is under way
        return system(base, schedule, seed)

    report = explore(base_file, 3000, backend="local", seed=3, out_dir=tmp_path / "explored",
                     journal_dir=tmp_path / "journals", faults=["kill", "pause", "reset_peer"],
                     run_one=run_one, display=panel, clock=system.clock)
    assert report.status == "found"
    assert seen[0]["examples tried"] == "0 (0 failed)" and seen[0]["best failure"] == "none yet"
    assert seen[0]["time left"] == "3000s of 3000s"
    first_failure = next(i for i, r in enumerate(report.search.ran) if r.trial.outcome is Outcome.FAILED)
    after = seen[first_failure + 1]
    assert after["best failure"] == report.search.ran[first_failure].trial.schedule.describe()
    assert after["examples tried"] == f"{first_failure + 1} (1 failed)"
    assert int(after["faults injected"]) == sum(len(r.trial.schedule.faults) for r in report.search.ran[:first_failure + 1])
    console.print(panel.render())
    text = console.export_text()
    assert "reset_peer crowd->edge" in text and "shrink path" in text and "rerun 3: FAILED" in text
    assert panel.counts()["best failure"] == report.search.smallest.schedule.describe()
    assert panel.counts()["phase"].startswith("rerun")
