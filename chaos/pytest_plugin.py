"""pytest plugin (entry point ``pytest11``): experiment files as tests, fixtures for Python tests.

``pytest experiments/`` collects every experiment file as one test named by
its title, its tags as markers (``-m relaunch``). Running the experiment is
the test's *setup* (an experiment that could not run - invalid file, stack
that would not start, a fault that failed - is reported as an ERROR); the
test itself judges the verdict (deviated or aborted: FAILED, with the
assertion, expected vs observed and the timeline around it).

Consecutive experiments with the same stack, backend, scale, profile and env
reuse one running stack (chaos.authoring.pool). ``--junitxml`` carries each
verdict and the paths of its journal and report as testcase properties.

Only ``.yaml``/``.yml``/``.json`` files that lie in a folder named
``experiments`` (or are named on the command line) and have an experiment's
keys are collected, so an ordinary test run is never disturbed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from chaos.authoring.faults import Faults
    from chaos.authoring.handle import StackHandle
    from chaos.authoring.pool import StackPool
    from chaos.proxy.client import ProxyClient
    from _pytest._code.code import TerminalRepr, TracebackStyle

SUFFIXES = (".yaml", ".yml", ".json")
EXPERIMENT_KEYS = ("method", "steady_state", "recovery")
POOL = pytest.StashKey["StackPool | None"]()


class CouldNotRun(Exception):
    """The experiment did not run to a verdict (shown as an ERROR)."""


class Deviated(Exception):
    """The experiment ran and did not pass (shown as a FAILURE)."""


# ---------------------------------------------------------------- options and configuration


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("roomquake", "roomquake chaos experiments")
    group.addoption("--roomquake-backend", choices=("docker", "local", "swarm"), default=None,
                    help="backend for experiments and stack fixtures (default: docker when an engine answers, else local)")
    group.addoption("--roomquake-report-dir", default=None, metavar="DIR",
                    help="where journals and HTML reports go (default: $ROOMQUAKE_JOURNAL_DIR or ./journals)")
    group.addoption("--roomquake-no-reuse", action="store_true", default=False,
                    help="bring up a fresh stack for every experiment (default: reuse one when stack and scale match)")
    group.addoption("--roomquake-seed", type=int, default=None, help="seed for every experiment (default: each file's own)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "roomquake: an experiment file run by roomquake")
    config.addinivalue_line("markers", "roomquake_stack(stack='audio-room', scale=None, profile=None, env=None, backend=None): "
                                       "which stack the roomquake_stack fixture brings up")
    config.stash[POOL] = None


def _pool(config: pytest.Config) -> StackPool:
    pool = config.stash.get(POOL, None)
    if pool is None:
        from chaos.authoring.pool import StackPool

        pool = StackPool(config.getoption("roomquake_backend"), reuse=not config.getoption("roomquake_no_reuse"))
        config.stash[POOL] = pool
    return pool


def pytest_unconfigure(config: pytest.Config) -> None:
    pool = config.stash.get(POOL, None)
    if pool is not None:
        config.stash[POOL] = None
        pool.close()


def _uses_pool(item: pytest.Item | None) -> bool:
    return isinstance(item, ExperimentItem) or "roomquake_stack" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after the item's own fixtures (its faults) are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Take the pooled stack down as soon as no following test needs it: the rest of the session runs without it."""
    if _uses_pool(item) and not _uses_pool(nextitem):
        pool = item.config.stash.get(POOL, None)
        if pool is not None:
            pool.close()


def _report_dir(config: pytest.Config) -> Path:
    given = config.getoption("roomquake_report_dir")
    if given:
        return Path(given)
    from chaos.run.journal import default_dir

    return default_dir()


# ---------------------------------------------------------------- collection


def _named_on_command_line(path: Path, config: pytest.Config) -> bool:
    for arg in config.args:
        candidate = Path(str(arg).split("::", 1)[0])
        if not candidate.is_absolute():
            candidate = Path(config.invocation_params.dir) / candidate
        if candidate.resolve() == path.resolve():
            return True
    return False


def looks_like_experiment(path: Path) -> bool:
    """Cheap check of the top-level keys (the full validation comes when the item runs)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            return False
        return isinstance(data, dict) and "title" in data and any(k in data for k in EXPERIMENT_KEYS)
    tops = {line.split(":", 1)[0].strip() for line in text.splitlines() if line[:1].isalpha() and ":" in line}
    return "title" in tops and any(k in tops for k in EXPERIMENT_KEYS)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in SUFFIXES:
        return None
    explicit = _named_on_command_line(file_path, parent.config)
    if not explicit and "experiments" not in file_path.parent.parts:
        return None
    if not looks_like_experiment(file_path) and not explicit:
        return None
    return ExperimentFile.from_parent(parent, path=file_path)


class ExperimentFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from chaos.experiment import validate_file

        experiment, problems = validate_file(self.path)
        title = experiment.title if experiment is not None else self.path.stem
        item = ExperimentItem.from_parent(self, name=title.replace("::", ":"), experiment=experiment,
                                          problems=[str(p) for p in problems])
        item.add_marker("roomquake")
        for tag in experiment.tags if experiment is not None else []:
            self.config.addinivalue_line("markers", f"{tag}: experiment tag")  # registered: --strict-markers passes
            item.add_marker(tag)
        yield item


def _stack_key(item: pytest.Item) -> tuple[Any, ...]:
    exp = getattr(item, "experiment", None)
    if exp is None:
        return ("",)
    return (exp.stack, exp.profile or "", json.dumps(exp.scale, sort_keys=True), json.dumps(exp.env, sort_keys=True))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group experiments that can share a stack, keeping everything else where it was."""
    slots = [i for i, item in enumerate(items) if isinstance(item, ExperimentItem)]
    if len(slots) < 2:
        return
    experiments = [items[i] for i in slots]
    first_seen: dict[tuple[Any, ...], int] = {}
    for n, item in enumerate(experiments):
        first_seen.setdefault(_stack_key(item), n)
    experiments.sort(key=lambda item: first_seen[_stack_key(item)])  # stable: file order within a group
    for slot, item in zip(slots, experiments):
        items[slot] = item


# ---------------------------------------------------------------- one experiment


class ExperimentItem(pytest.Item):
    def __init__(self, *, experiment: Any, problems: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = experiment
        self.problems = problems
        self.result: Any = None
        self.journal: dict[str, Any] | None = None
        self.report_path: Path | None = None

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"experiment: {self.name}"

    def _prop(self, name: str, value: Any) -> None:
        self.user_properties.append((name, "" if value is None else str(value)))

    def setup(self) -> None:
        if self.problems:
            raise CouldNotRun("invalid experiment file:\n" + "\n".join(self.problems))
        from chaos.report import write_report
        from chaos.report.keyprobes import with_key_probes
        from chaos.report.text import explain
        from chaos.run import RunOptions, Runner, Verdict
        from chaos.run.journal import read
        from chaos.run.ledger import ledger_dir

        from chaos.errors import RoomquakeError

        config = self.config
        pool = _pool(config)
        self._skip_unless_runs_on(pool.backend)
        experiment = with_key_probes(self.experiment, self.path)
        try:
            lease = pool.lease(experiment, self.path)
        except RoomquakeError as err:
            self._prop("verdict", Verdict.ERRORED.value)
            self._prop("reason", err.one_line())
            raise CouldNotRun(f"the experiment could not run: {err.one_line()}") from None
        folder = _report_dir(config)
        runner = Runner(lease.experiment, self.path, RunOptions(
            backend=pool.backend, seed=config.getoption("roomquake_seed"), journal_dir=folder,
            open_stack=lease.open_stack, ledger_dir=ledger_dir(), stack_origin="reused" if lease.reused else None,
        ))
        self.result = result = runner.run()
        self.journal = read(result.journal)
        self.journal["_path"] = str(result.journal)
        self.report_path = write_report(result.journal, folder / f"{result.run_id}.html")
        self._prop("verdict", result.verdict.value)
        self._prop("reason", result.reason)
        self._prop("as_declared", result.as_declared)
        self._prop("run_id", result.run_id)
        self._prop("seed", result.seed)
        self._prop("backend", self.journal.get("backend"))
        self._prop("stack_reused", "yes" if lease.reused else "no")
        self._prop("journal", result.journal)
        self._prop("report", self.report_path)
        # recovery times of disturbed checks only; a check that was never disturbed says so instead
        for check, seconds in (self.journal.get("recovery_times") or {}).items():
            self._prop(f"recovery_s:{check}", seconds)
        for check, seconds in (self.journal.get("back_during") or {}).items():  # back before its fault ended
            self._prop(f"back_during_s:{check}", seconds)
        for check in self.journal.get("not_disturbed") or []:
            self._prop(f"outcome:{check}", "not_disturbed")
        if result.verdict is Verdict.ABORTED and result.reason.startswith("interrupted by"):
            raise KeyboardInterrupt(result.reason)
        if result.verdict is Verdict.ERRORED:
            raise CouldNotRun("the experiment could not run\n" + explain(self.journal, str(self.report_path)))

    def _skip_unless_runs_on(self, backend: str) -> None:
        """An experiment whose faults need another backend (node faults: swarm) is skipped, saying which."""
        from chaos.experiment.stackcheck import backends_for

        allowed = backends_for(self.experiment)
        if allowed is not None and backend not in allowed:
            names = sorted(allowed)
            self._prop("verdict", "skipped")
            pytest.skip(f"{self.path.name} needs the {' or '.join(names)} backend; this session runs on {backend} "
                        f"(--roomquake-backend {names[0]})")

    def runtest(self) -> None:
        from chaos.report.text import explain

        assert self.result is not None
        if self.result.exit_code != 0:
            raise Deviated(explain(self.journal or {}, str(self.report_path)))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: TracebackStyle | None = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, (CouldNotRun, Deviated)):
            return str(excinfo.value)
        from chaos.errors import RoomquakeError

        if isinstance(excinfo.value, RoomquakeError):
            return f"the experiment could not run: {excinfo.value.one_line()}"
        return super().repr_failure(excinfo)


# ---------------------------------------------------------------- fixtures for Python-authored tests


@pytest.fixture
def roomquake_stack(request: pytest.FixtureRequest) -> Iterator[StackHandle]:
    """A running stack (chaos.authoring.StackHandle) for this test, reset if an earlier test used it.

    Configure with ``@pytest.mark.roomquake_stack(scale={"edge": 3}, profile="ci", env={...})``.
    """
    marker = request.node.get_closest_marker("roomquake_stack")
    kwargs = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        kwargs.setdefault("stack", marker.args[0])
    handle = _pool(request.config).handle(base=request.config.rootpath, **kwargs)
    yield handle


@pytest.fixture
def roomquake_proxy(roomquake_stack: StackHandle) -> Iterator[ProxyClient]:
    """A Toxiproxy client (chaos.proxy.client.ProxyClient) for the stack's proxy."""
    with roomquake_stack.proxy_client() as client:  # carries the run's proxy token
        yield client


@pytest.fixture
def faults(roomquake_stack: StackHandle) -> Iterator[Faults]:
    """Faults as context managers on the test's stack (chaos.authoring.Faults); all rolled back at the end."""
    from chaos.authoring.faults import Faults

    injector = Faults(roomquake_stack, seed=0, run_id="pytest")
    try:
        yield injector
    finally:
        injector.roll_back_all()
