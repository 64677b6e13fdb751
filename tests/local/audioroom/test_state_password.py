"""STATE_PASSWORD (contract C4): every service that talks to the state store authenticates with it.

A real redis-server started with --requirepass; the whole room path (create,
join, listen, heartbeats, leases) works, a service without the right password
is refused with a clear reason, and the password appears in no log.
"""

from __future__ import annotations

import redis

from .conftest import TOLERANT

SECRET = "s3cret-7f1c2e"
BASE = {"edge": 1, "control": 2, "supervisor": 1, "host": 1, "crowd": 1}


def test_services_authenticate_with_state_password_and_a_wrong_one_is_refused_clearly(make_stack):
    stack = make_stack(BASE, env={**TOLERANT, "STATE_PASSWORD": SECRET},
                       per_instance={"host-1": {"HOST_ACCOUNT": "alice"}, "control-2": {"STATE_PASSWORD": "wrong"}})
    try:
        redis.Redis(port=stack.procs["state"].port, socket_timeout=2).ping()
        raise AssertionError("redis-server answered without the password")
    except redis.AuthenticationError:
        pass
    stack.start_all(["edge-1", "control-1", "supervisor-1", "host-1", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": []})
    assert status == 201, body
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": 10, "ramp_s": 0.2})
    stack.wait_for(lambda: stack.stats()["hearing"] == 10, 30, "10 listeners hearing")
    assert stack.metric("supervisor-1", "supervisor_leases_held") == int(stack.env["SHARDS"])
    assert stack.redis().zscore("rq:hb:edges", "edge-1") is not None  # the edge's heartbeats land

    stack.start("control-2", wait=False)  # the wrong password: up, but every state call is refused
    stack.wait_for(lambda: stack.http("GET", stack.url("control-2", "/health"))[0] == 503, 30, "control-2 to answer")
    status, body = stack.http("POST", stack.url("control-2", "/rooms/launch/join"))
    assert status == 503 and body["reason"].startswith("state unreachable") and "Auth" in body["reason"], body
    assert stack.http("POST", stack.url("control-1", "/rooms/launch/join"))[0] == 200

    for name in ("edge-1", "control-1", "control-2", "supervisor-1", "host-1", "crowd-1"):
        assert SECRET not in stack.procs[name].log.read_text(errors="replace"), name
