"""PreciseTimer: order, cancellation, fallback without timerfd (no timing asserted)."""

from __future__ import annotations

import asyncio
import time

from chaos.proxy.timer import PreciseTimer


async def _run(timer: PreciseTimer) -> list[int]:
    fired: list[int] = []
    done = asyncio.get_running_loop().create_future()
    now = time.monotonic()
    for i, delay in enumerate([0.03, 0.01, 0.02]):
        timer.call_at(now + delay, lambda i=i: fired.append(i))
    timer.call_at(now + 0.015, lambda: fired.append(99)).cancel()
    timer.call_at(now + 0.04, lambda: done.set_result(None))
    await asyncio.wait_for(done, 5)
    await timer.sleep_until(time.monotonic() + 0.005)
    assert time.monotonic() >= now + 0.04
    return fired


async def test_fires_in_deadline_order_and_skips_cancelled():
    timer = PreciseTimer(asyncio.get_running_loop())
    try:
        assert await _run(timer) == [1, 2, 0]
    finally:
        timer.close()


async def test_loop_timer_fallback_behaves_the_same():
    timer = PreciseTimer(asyncio.get_running_loop())
    timer.close()
    timer._fd = -1  # as on a system without timerfd
    assert await _run(timer) == [1, 2, 0]
    timer.close()
