import math

import pytest

from audioroom import config

BASE = {"RQ_SERVICE": "edge", "RQ_INSTANCE": "edge-2", "RQ_PORT": "8765",
        "RQ_ROUTES": '{"state": "127.0.0.1:6379", "edge-1": "127.0.0.1:20001", "edge-10": "h:2", "edge-2": "h:3"}'}


def test_contract_variables_and_defaults():
    s = config.load(BASE)
    assert (s.service, s.instance, s.bind, s.port) == ("edge", "edge-2", "127.0.0.1", 8765)
    assert s.route("state") == ("127.0.0.1", 6379)
    assert s.instances_of("edge") == ["edge-1", "edge-2", "edge-10"]
    assert s.timings.heartbeat_interval == 1.0 and s.timings.supervisor_tick == 1.0
    assert s.patience == math.inf and s.give_up == 0.0


@pytest.mark.parametrize("raw, seconds", [("0.5", 0.5), ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), (" 100ms ", 0.1)])
def test_durations(raw, seconds):
    assert config.parse_duration("X", raw) == pytest.approx(seconds)


def test_profile_variables_are_read():
    s = config.load({**BASE, "HEARTBEAT_INTERVAL": "100ms", "HEARTBEAT_TIMEOUT": "500ms", "LEASE_TTL": "3s",
                     "HOST_GRACE": "1s", "CROWD_PATIENCE": "20s", "CROWD_GIVE_UP": "0.25", "EDGE_CAPACITY": "7"})
    t = s.timings
    assert (t.heartbeat_interval, t.heartbeat_timeout, t.lease_ttl, t.host_grace) == (0.1, 0.5, 3.0, 1.0)
    assert t.supervisor_tick == 0.1  # defaults to the heartbeat interval
    assert (s.patience, s.give_up, s.edge_capacity) == (20.0, 0.25, 7)


@pytest.mark.parametrize("env, names", [
    ({"HEARTBEAT_INTERVAL": "fast"}, "HEARTBEAT_INTERVAL='fast'"),
    ({"HEARTBEAT_INTERVAL": "1s", "HEARTBEAT_TIMEOUT": "1s"}, "HEARTBEAT_TIMEOUT"),
    ({"RQ_ROUTES": "{nope"}, "RQ_ROUTES is not JSON"),
    ({"RQ_ROUTES": '{"state": "no-port"}'}, "RQ_ROUTES['state']"),
    ({"EDGE_CAPACITY": "0"}, "EDGE_CAPACITY='0': must be >= 1"),
    ({"CROWD_GIVE_UP": "2"}, "CROWD_GIVE_UP='2'"),
    ({"RQ_PORT": "x"}, "RQ_PORT='x'"),
    ({"EDGE_ADMISSION": "maybe"}, "EDGE_ADMISSION='maybe': expected on or off"),
    ({"EDGE_MAX_PENDING": "0"}, "EDGE_MAX_PENDING='0': must be >= 1"),
    ({"EDGE_JOIN_WORK": "lots"}, "EDGE_JOIN_WORK='lots'"),
    ({"EDGE_JOIN_WAIT": "-1s"}, "EDGE_JOIN_WAIT='-1s'"),
    ({"EDGE_CHECK_NICENESS": "-5"}, "EDGE_CHECK_NICENESS='-5': must be >= 0"),
])
def test_bad_values_are_one_line_naming_the_variable(env, names):
    with pytest.raises(config.ConfigError) as err:
        config.load({**BASE, **env})
    assert names in str(err.value) and "\n" not in str(err.value)


def test_missing_route_names_known_ones():
    with pytest.raises(config.ConfigError, match=r"no route to 'control' \(known: edge-1"):
        config.load(BASE).route("control")


def test_load_or_exit_prints_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("RQ_ROUTES", "[")
    with pytest.raises(SystemExit) as exit_:
        config.load_or_exit("control")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().startswith("audioroom.control: RQ_ROUTES is not JSON")


def test_crowd_silence_hearing_and_state_password():
    s = config.load(BASE)
    assert (s.silence_timeout, s.hearing_window, s.state_password) == (5.0, 1.0, "")
    s = config.load({**BASE, "CROWD_SILENCE_TIMEOUT": "1500ms", "CROWD_HEARING_WINDOW": "2s", "STATE_PASSWORD": "pw"})
    assert (s.silence_timeout, s.hearing_window, s.state_password) == (1.5, 2.0, "pw")
    assert "pw" not in repr(s)  # never printed with the settings
    assert config.load({**BASE, "CROWD_SILENCE_TIMEOUT": "0"}).silence_timeout == math.inf  # 0: never
    with pytest.raises(config.ConfigError, match="CROWD_SILENCE_TIMEOUT='soon'"):
        config.load({**BASE, "CROWD_SILENCE_TIMEOUT": "soon"})


def test_a_run_of_failures_is_logged_when_it_starts_and_when_it_ends(caplog):
    import logging

    from audioroom.runtime import Outage

    log = logging.getLogger("audioroom.test")
    caplog.set_level(logging.INFO, logger="audioroom.test")
    outage = Outage(log, "state store")
    outage.ok()
    for _ in range(50):
        outage.failed("heartbeat", TimeoutError("Timeout reading from socket"))
    outage.ok()
    outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0] == "state store: heartbeat failed: Timeout reading from socket (not logged again until it works)"
    assert lines[1].startswith("state store: works again after 50 failed tries over ")


def test_admission_is_off_by_default_and_on_bounds_the_backlog():
    off = config.load(BASE).admission
    assert (off.enabled, off.join_work, off.backlog) == (False, 0.0, 8192)
    on = config.load({**BASE, "EDGE_ADMISSION": "on", "EDGE_JOIN_WORK": "20ms", "EDGE_MAX_HANDSHAKES": "2",
                      "EDGE_MAX_PENDING": "16", "EDGE_SHED_LAG": "50ms", "EDGE_RETRY_AFTER": "1.5s"}).admission
    assert (on.enabled, on.join_work, on.max_handshakes, on.max_pending, on.shed_lag) == (True, 0.02, 2, 16, 0.05)
    assert on.retry_after == 2  # whole seconds, rounded up (Retry-After's delay-seconds)
    assert on.backlog == 1024
    assert (on.join_wait, off.join_wait) == (0.0, 0.0)
    assert config.load({**BASE, "EDGE_JOIN_WAIT": "20ms"}).admission.join_wait == 0.02
    assert config.load({**BASE, "EDGE_JOIN_WAIT": "0"}).admission.join_wait == 0.0
    assert config.load({**BASE, "EDGE_ADMISSION": "on", "EDGE_BACKLOG": "64"}).admission.backlog == 64
    assert (off.check_niceness, config.load({**BASE, "EDGE_CHECK_NICENESS": "5"}).admission.check_niceness) == (0, 5)
