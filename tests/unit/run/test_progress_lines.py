"""Progress lines: how a run gets its stack is said once; relaunches appear as the sampler sees them."""

from __future__ import annotations

from chaos.run import events as ev
from chaos.run.progress import line_for
from chaos.run.relaunches import RelaunchWatch, watch_relaunches


def started(mode: str, backend: str) -> ev.RunStarted:
    return ev.RunStarted(run_id="r1", title="t", file="x.yaml", seed=1, backend=backend, mode=mode)


def test_attach_is_said_once() -> None:
    line = line_for(started("attach", "attach"))
    assert line == "run r1: t (seed 1, attaching to a running stack)"
    assert line_for(started("bring_up", "local")) == "run r1: t (seed 1, backend local, bring up)"


def test_a_rising_counter_is_one_event_per_rise() -> None:
    seen: list[ev.Event] = []
    watch = RelaunchWatch("room.relaunches{room=launch}", seen.append)
    for t, value in [(0.0, 0), (0.25, 0), (0.5, None), (0.75, 1), (0.6, 0), (1.0, 1), (1.25, 3), (1.5, True)]:
        watch.feed(t, value)  # (0.6, 0): a late, older read; None and True: unreadable
    assert [(e.previous, e.count) for e in seen if isinstance(e, ev.RelaunchSeen)] == [(0, 1), (1, 3)]
    assert line_for(seen[0]) == "relaunch #1 seen (room.relaunches{room=launch}: 0 -> 1)"
    assert seen[1].message == "relaunch #3 seen (room.relaunches{room=launch}: 1 -> 3)"


def test_a_counter_already_up_when_sampling_starts_is_no_event() -> None:
    seen: list[ev.Event] = []
    watch = RelaunchWatch("room.relaunches", seen.append)
    watch.feed(0.0, 4)
    watch.feed(0.25, 4)
    assert seen == []


class Sampler:
    def __init__(self) -> None:
        self.probes: list[tuple[str, dict[str, object]]] = []
        self.watches: list[object] = []

    def add_probe(self, ref: str, params: dict[str, object]) -> str:
        self.probes.append((ref, params))
        return f"{ref}{{room=launch}}"

    def watch(self, watch: object) -> None:
        self.watches.append(watch)


def test_the_stacks_relaunch_probe_is_sampled_and_watched() -> None:
    sampler = Sampler()
    key = watch_relaunches(sampler, ["room.state", "room.relaunches", "crowd.connected"], lambda ref: {"room": "launch"},
                           lambda event: None)
    assert key == "room.relaunches{room=launch}" and sampler.probes == [("room.relaunches", {"room": "launch"})]
    assert isinstance(sampler.watches[0], RelaunchWatch)
    assert watch_relaunches(Sampler(), ["room.state"], lambda ref: {}, lambda event: None) is None


def test_a_passed_recovery_shows_the_read_that_passed_it() -> None:
    """A read still in flight when the check passed may come back unreadable later: the
    line shows the passing value, never "(observed None)" beside "ok"."""
    result = ev.CheckResult(
        check="room-survived", phase="recovery", probe="room.state", expect="live", mode="within", ok=True,
        message="", observed=[(9.8, None), (14.1, "live"), (14.2, None)], recovery_s=0.07, anchor="crash-state",
        outcome="ok", disturbed_at=9.8, disturbed_by="unreadable", passed_with=(14.1, "live"),
    )
    line = line_for(result)
    assert line.startswith("ok   recovery: room-survived: live after 0.07s")
    assert line.endswith("(observed 'live')")
