"""Staff reduction: with 1 of 4 supervisors left, rooms of the dead ones wait for their leases to expire."""

from __future__ import annotations

import statistics
import time
import zlib

SHARDS = 8
LEASE_TTL = 4.0  # long against HEARTBEAT_TIMEOUT (1 s) so the two recoveries separate clearly
ROOMS = [f"room-{i}" for i in range(16)]


def recovery_times(stack, before: dict[str, int], dead: set[str], since: float) -> dict[str, float]:
    """Seconds from ``since`` until each room was relaunched onto a live edge."""
    def done():
        rooms = {r: stack.room(r) for r in ROOMS}
        return all(r["generation"] > before[n] and r["edge"] not in dead for n, r in rooms.items()) and rooms

    rooms = stack.wait_for(done, 20, "every room relaunched on a live edge", interval=0.1)
    return {name: r["last_relaunch"]["completed_at"] - since for name, r in rooms.items()}


def generations(stack) -> dict[str, int]:
    return {r: stack.room(r)["generation"] for r in ROOMS}


def test_recovery_with_one_of_four_supervisors_waits_for_lease_expiry(make_stack):
    # No host processes: HOST_GRACE is long so only edge loss matters here.
    stack = make_stack({"edge": 4, "control": 1, "supervisor": 4},
                       env={"SHARDS": str(SHARDS), "LEASE_TTL": f"{LEASE_TTL}s", "HOST_GRACE": "60s"})
    sups = ["supervisor-1", "supervisor-2", "supervisor-3", "supervisor-4"]
    stack.start_all(["edge-1", "control-1", *sups])
    stack.wait_for(lambda: all(stack.metric(s, "supervisor_leases_held") == SHARDS / 4 for s in sups),
                   4 * LEASE_TTL, "leases split 2/2/2/2", interval=0.2)
    for room in ROOMS:
        status, body = stack.http("POST", stack.url("control-1", "/rooms"), {"room": room, "host": "alice"})
        assert status == 201 and body["edge"] == "edge-1"
    stack.start_all(["edge-2", "edge-3"])
    time.sleep(0.3)  # all edges have beaten

    # A: all four supervisors alive; the edge with every room dies.
    before, t_a = generations(stack), time.time()
    stack.kill("edge-1")
    fast = recovery_times(stack, before, {"edge-1"}, t_a)
    stack.start("edge-4")
    time.sleep(0.3)

    # B: three supervisors die with the edges now holding the rooms; edge-4 is left.
    holders = stack.redis().mget([f"rq:lease:{s}" for s in range(SHARDS)])
    orphaned = [r for r in ROOMS if holders[zlib.crc32(r.encode()) % SHARDS] != "supervisor-1"]
    kept = [r for r in ROOMS if r not in orphaned]
    assert orphaned and kept, (holders, "rooms should span survivor and dead supervisors' shards")
    before, t_b = generations(stack), time.time()
    for name in ("supervisor-2", "supervisor-3", "supervisor-4", "edge-2", "edge-3"):
        stack.kill(name)
    slow = recovery_times(stack, before, {"edge-1", "edge-2", "edge-3"}, t_b)

    assert all(stack.room(r)["edge"] == "edge-4" for r in ROOMS)
    a, b_orphaned, b_kept = statistics.mean(fast.values()), statistics.mean(slow[r] for r in orphaned), \
        statistics.mean(slow[r] for r in kept)
    # Orphaned rooms wait for lease expiry: a lease renewed every TTL/3 has >= 2/3 TTL left at the kill.
    assert min(slow[r] for r in orphaned) > max(fast.values()), (fast, slow)
    assert b_orphaned >= a + LEASE_TTL / 3, (a, b_orphaned)
    # The survivor's own rooms recover as fast as with full staff (same order as A, not lease-bound).
    assert b_kept < b_orphaned - LEASE_TTL / 3, (b_kept, b_orphaned)
    print(f"\nrecovery mean: 4 supervisors {a:.2f}s; 1 of 4: own shards {b_kept:.2f}s, orphaned {b_orphaned:.2f}s")
