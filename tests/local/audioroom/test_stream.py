"""A host creates a room through control and streams; listeners join through control and hear it."""

from __future__ import annotations


CONTRACT_METRICS = {
    "crowd-1": ["crowd_listeners_target", "crowd_listeners_connected", "crowd_joins_attempted_total",
                "crowd_joins_succeeded_total", "crowd_kicks_total", "crowd_reconnects_total",
                "crowd_join_latency_seconds_bucket", "crowd_frame_gap_seconds_bucket",
                "crowd_frame_delay_seconds_bucket", "crowd_recovered_after_relaunch_total"],
    "supervisor-1": ["supervisor_leases_held", "supervisor_relaunch_detect_seconds",
                     "supervisor_relaunch_complete_seconds"],
    "edge-1": ["edge_listeners", "edge_kicks_total", "edge_frames_out_total"],
    "control-1": ["control_joins_total"],
}


def test_listeners_hear_the_host_in_order_with_delay_reported(make_stack):
    stack = make_stack({"edge": 1, "control": 1, "supervisor": 1, "host": 1, "crowd": 1},
                       per_instance={"host-1": {"HOST_ACCOUNT": "alice"}})
    stack.start_all(["edge-1", "control-1", "supervisor-1", "host-1", "crowd-1"])
    http, wait_for = stack.http, stack.wait_for

    status, room = http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201, room
    assert (room["state"], room["edge"], room["host"], room["generation"]) == ("live", "edge-1", "alice", 1)

    status, join = http("POST", stack.url("control-1", "/rooms/launch/join"))
    assert (status, join) == (200, {"edge": "edge-1", "generation": 1})

    assert http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": 20, "ramp_s": 0.2})[0] == 202
    wait_for(lambda: stack.stats()["frames"]["received"] >= 20 * 10, 20, "every listener to get ~10 frames")

    stats = stack.stats()
    assert stats["connected"] == 20 and stats["target"] == 20
    assert stats["joins"]["succeeded"] == 20 and stats["joins"]["failed"] == {}
    frames = stats["frames"]
    assert frames["out_of_order"] == 0 and frames["lost"] == 0
    assert frames["delay_p50_ms"] is not None and 0 <= frames["delay_p50_ms"] < 1000
    assert stats["rooms"]["launch"]["members"] == {"1": 20}
    assert stack.metric("edge-1", "edge_listeners") == 20
    assert stack.metric("edge-1", "edge_frames_out_total") >= 200
    assert stack.metric("control-1", "control_joins_total", 'result="ok"') >= 21


def test_every_service_serves_health_and_contract_metrics(make_stack):
    stack = make_stack({"edge": 1, "control": 1, "supervisor": 1, "host": 1, "crowd": 1},
                       per_instance={"host-1": {"HOST_ACCOUNT": "alice"}})
    stack.start_all(["edge-1", "control-1", "supervisor-1", "host-1", "crowd-1"])
    http = stack.http
    http("POST", stack.url("control-1", "/rooms/nothing/join"))  # so control_joins_total has a sample
    for name, metrics in CONTRACT_METRICS.items():
        status, body = http("GET", stack.url(name, "/health"))
        assert status == 200, (name, body)
        status, text = http("GET", stack.url(name, "/metrics"))
        assert status == 200
        for metric in metrics:
            assert f"\n{metric}" in text, f"{name} /metrics lacks {metric}"
    status, _ = http("GET", stack.url("host-1", "/metrics"))
    assert status == 200
