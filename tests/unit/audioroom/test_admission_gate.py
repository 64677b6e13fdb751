"""The edge's admission gate, without a server: what it admits, what it sheds and why."""

import asyncio
import time

from audioroom import admission, config


def gate(lag: float = 0.0, **env: str) -> admission.Gate:
    settings = config.load({"RQ_SERVICE": "edge", "EDGE_ADMISSION": "on", **env}).admission
    loop_lag = admission.LoopLag()
    loop_lag.value = lag
    return admission.Gate(settings, loop_lag)


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


async def test_with_admission_off_the_check_runs_inline_and_nothing_is_shed():
    settings = config.load({"RQ_SERVICE": "edge", "EDGE_JOIN_WAIT": "10ms"}).admission
    g = admission.Gate(settings, admission.LoopLag())
    g.lag.value = 10.0  # however late the loop: an unprotected edge never sheds
    assert g.pool is None and await g.admit() is None


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
