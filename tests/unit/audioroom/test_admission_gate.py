"""The edge's admission gate, without a server: what it admits, what it sheds and why."""

import asyncio
import time

from audioroom import admission, config


def gate(lag: float = 0.0, **env: str) -> admission.Gate:
    settings = config.load({"RQ_SERVICE": "edge", "EDGE_ADMISSION": "on", **env}).admission
    loop_lag = admission.LoopLag()
    loop_lag.value = lag
    return admission.Gate(settings, loop_lag)


def returns_at_once(step) -> bool:
    """Whether a coroutine finishes without ever giving the loop a turn (decided without a clock)."""
    try:
        step.send(None)
    except StopIteration:
        return True
    step.close()
    return False


def test_the_join_check_is_calibrated_to_its_duration():
    check = admission.JoinCheck(0.02)
    started = time.perf_counter()
    check()
    took = time.perf_counter() - started
    assert check.iterations > 0 and took > 0.005  # near 20 ms on an idle machine; never next to nothing
    assert not admission.JoinCheck(0)


def test_the_join_check_can_be_a_blocking_wait_that_costs_no_cpu():
    check = admission.JoinCheck(0, wait=0.05)
    assert check and check.iterations == 0
    wall, cpu = time.perf_counter(), time.thread_time()
    check()
    assert time.perf_counter() - wall >= 0.05  # a sleep lasts at least as long, however busy the machine
    assert time.thread_time() - cpu < 0.02


async def test_joins_beyond_the_queue_or_while_the_loop_is_late_are_shed_with_their_cause():
    g = gate(EDGE_JOIN_WAIT="50ms", EDGE_MAX_HANDSHAKES="1", EDGE_MAX_PENDING="2")
    first, second = asyncio.ensure_future(g.admit()), asyncio.ensure_future(g.admit())
    await asyncio.sleep(0)
    assert g.pending == 2
    assert await g.admit() == "pending"  # the third finds the queue full: shed at once
    assert await first is None and await second is None and g.pending == 0
    g.close()
    late = gate(lag=0.5)
    assert await late.admit() == "lag"
    assert await gate(lag=0.01).admit() is None  # no join check configured: admitted at once


async def test_with_admission_off_nothing_is_shed_and_the_checks_run_one_at_a_time_in_arrival_order():
    settings = config.load({"RQ_SERVICE": "edge", "EDGE_JOIN_WAIT": "30ms", "EDGE_MAX_HANDSHAKES": "4"}).admission
    g = admission.Gate(settings, admission.LoopLag())
    g.lag.value = 10.0  # however late the loop: an unprotected edge never sheds
    started = time.perf_counter()
    answers = await asyncio.gather(*(g.admit() for _ in range(3)))
    assert answers == [None, None, None]
    assert time.perf_counter() - started >= 0.09  # one worker, whatever EDGE_MAX_HANDSHAKES says: 3 x 30 ms
    g.close()


async def test_with_admission_off_the_heartbeat_waits_behind_the_joins_already_queued():
    off = admission.Gate(config.load({"RQ_SERVICE": "edge", "EDGE_JOIN_WAIT": "50ms"}).admission, admission.LoopLag())
    joins = [asyncio.ensure_future(off.admit()) for _ in range(4)]
    await asyncio.sleep(0)  # the four are queued on the worker before the beat asks for its turn
    started = time.perf_counter()
    await off.heartbeat_turn()
    assert time.perf_counter() - started >= 0.15  # at least the three still waiting, however fast the machine
    assert all(j.done() for j in joins)  # in arrival order: every join queued before it went first
    off.close()


async def test_with_admission_on_the_heartbeat_never_waits_for_the_join_checks():
    on = gate(EDGE_JOIN_WAIT="200ms", EDGE_MAX_HANDSHAKES="1", EDGE_MAX_PENDING="8")
    joins = [asyncio.ensure_future(on.admit()) for _ in range(4)]
    await asyncio.sleep(0)
    assert returns_at_once(on.heartbeat_turn())  # the checks hold 800 ms of waits; the beat waits for none
    assert not any(j.done() for j in joins)
    on.close()
    for j in joins:
        j.cancel()
    await asyncio.gather(*joins, return_exceptions=True)


async def test_with_admission_off_and_no_join_check_nothing_waits():
    g = admission.Gate(config.load({"RQ_SERVICE": "edge"}).admission, admission.LoopLag())
    assert g.pool is None and await g.admit() is None
    assert returns_at_once(g.heartbeat_turn())


async def test_the_lag_watch_sees_a_blocked_loop():
    lag = admission.LoopLag(interval=0.01, decay=0.9)
    stop = asyncio.Event()
    watch = asyncio.ensure_future(lag.watch(stop))
    await asyncio.sleep(0.02)
    time.sleep(0.3)  # the loop blocked: a busy machine only makes the timer later
    await asyncio.sleep(0.015)
    assert lag.value > 0.2
    stop.set()
    await watch


def test_the_lag_is_forgotten_tick_by_tick():
    # decided on the arithmetic, not on a loaded machine's timers (one CI run beside a hog read 0.165 s of
    # fresh lag a second after the block, from the machine alone)
    lag = admission.LoopLag(interval=0.01, decay=0.9)
    lag.tick(0.3)
    for _ in range(30):
        lag.tick(0.0)
    assert 0.01 < lag.value < 0.3 * 0.9**29  # 30 on-time ticks: decayed, not dropped
    lag.tick(0.05)
    assert lag.value == max(0.05, 0.3 * 0.9**31)


async def test_join_checks_can_run_at_a_lower_priority_than_the_event_loop():
    import os
    import threading

    g = gate(EDGE_JOIN_WAIT="1ms", EDGE_MAX_HANDSHAKES="1", EDGE_CHECK_NICENESS="5")
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = await asyncio.get_running_loop().run_in_executor(
        g.pool, lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert worker == min(19, here + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # the loop's thread is untouched
    g.close()
