"""Probe evaluation on real HTTP servers (loopback) serving JSON and Prometheus text."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chaos.probes import HttpJsonProbe, MetricProbe, QuantileProbe, RatioProbe, StateProbe, fill
from chaos.stack.probes import evaluate, forget_unreadable, histogram_quantile, parse_samples, unreadable_reason


def crowd_metrics(connected: int, target: int, latencies: list[float]) -> bytes:
    reg = CollectorRegistry()
    Gauge("crowd_listeners_connected", "", registry=reg).set(connected)
    Gauge("crowd_listeners_target", "", registry=reg).set(target)
    kicks = Counter("crowd_kicks_total", "", ["edge"], registry=reg)
    kicks.labels("edge-1").inc(3)
    kicks.labels("edge-2").inc(1)
    hist = Histogram("crowd_join_latency_seconds", "", buckets=(0.1, 0.5, 1.0), registry=reg)
    for value in latencies:
        hist.observe(value)
    return generate_latest(reg)


class Server:
    def __init__(self, routes: dict[str, tuple[str, bytes]]):
        routes_ = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path not in routes_:
                    self.send_response(404)
                    self.end_headers()
                    return
                ctype, body, *status = routes_[self.path]
                self.send_response(status[0] if status else 200)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Inst:
    name: str
    service: str
    state: str


class FakeStack:
    """Instances and addresses only; the servers behind them are real."""

    def __init__(self, servers: dict[str, tuple[str, Server | None, str]]):
        self.servers = servers

    def instances(self, service=None):
        return [Inst(n, s, st) for n, (s, _, st) in self.servers.items() if service in (None, s)]

    def address(self, name):
        server = self.servers[name][1]
        return "127.0.0.1", server.port if server else 1


@pytest.fixture
def stack():
    room = {"room": "launch", "state": "live", "edge": "edge-2",
            "last_relaunch": {"reason": "edge_lost", "detected_at": 100.5, "completed_at": 101.75}}
    control = Server({"/rooms/launch": ("application/json", json.dumps(room).encode())})
    crowd1 = Server({"/metrics": ("text/plain", crowd_metrics(40, 50, [0.05, 0.2, 0.3]))})
    crowd2 = Server({"/metrics": ("text/plain", crowd_metrics(45, 50, [0.7, 0.8, 0.9]))})
    yield FakeStack({
        "control-1": ("control", control, "running"),
        "crowd-1": ("crowd", crowd1, "running"),
        "crowd-2": ("crowd", crowd2, "running"),
        "crowd-3": ("crowd", None, "exited"),
        "edge-1": ("edge", None, "exited"),
        "edge-2": ("edge", None, "running"),
    })
    for s in (control, crowd1, crowd2):
        s.close()


def test_http_json_field_and_difference(stack):
    state = HttpJsonProbe(kind="http_json", service="control", path="/rooms/{room}", field="state", params={"room": "launch"})
    assert evaluate(state, stack) == "live"
    assert evaluate(state, stack, {"room": "other"}) is None  # 404: unknown, not a guess
    took = HttpJsonProbe(kind="http_json", service="control", path="/rooms/{room}", field="last_relaunch.completed_at",
                         subtract="last_relaunch.detected_at", params={"room": "launch"})
    assert evaluate(took, stack) == pytest.approx(1.25)


def test_a_read_without_a_value_says_why():
    """The sample stays None; the reason is kept for the runner's failure message and journal."""
    body = b'{"error": "state unreachable: ConnectionError: Error 111 connecting to proxy:16379."}'
    control = Server({"/rooms/launch": ("application/json", body, 503),
                      "/rooms/odd": ("application/json", b'{"room": "odd"}')})
    stack = FakeStack({"control-1": ("control", control, "running")})
    state = HttpJsonProbe(kind="http_json", service="control", path="/rooms/{room}", field="state",
                          params={"room": "launch"})
    try:
        assert evaluate(state, stack) is None
        reason = unreadable_reason()
        assert reason is not None and reason.startswith(f"HTTP 503 from 127.0.0.1:{control.port}/rooms/launch")
        assert "state unreachable: ConnectionError" in reason
        assert evaluate(state, stack, {"room": "odd"}) is None
        assert unreadable_reason() == "no field 'state' in control-1's answer to /rooms/odd"
        forget_unreadable()
        assert unreadable_reason() is None
    finally:
        control.close()
    assert evaluate(state, stack) is None  # the server is gone: refused
    reason = unreadable_reason()
    assert reason is not None and reason.startswith(f"127.0.0.1:{control.port}/rooms/launch: ")


def test_metric_summed_over_running_instances_with_label_filter(stack):
    assert evaluate(MetricProbe(kind="metric", service="crowd", metric="crowd_listeners_connected"), stack) == 85
    assert evaluate(MetricProbe(kind="metric", service="crowd", metric="crowd_kicks_total"), stack) == 8
    assert evaluate(MetricProbe(kind="metric", service="crowd", metric="crowd_kicks", labels={"edge": "edge-1"}), stack) == 6
    assert evaluate(MetricProbe(kind="metric", service="crowd", metric="no_such_metric"), stack) is None


def test_ratio_and_quantile_over_all_instances(stack):
    ratio = RatioProbe(kind="ratio", service="crowd", numerator={"metric": "crowd_listeners_connected"},
                       denominator={"metric": "crowd_listeners_target"})
    assert evaluate(ratio, stack) == pytest.approx(85 / 100)
    p50 = QuantileProbe(kind="quantile", service="crowd", metric="crowd_join_latency_seconds", q=0.5)
    # 6 observations: 1 <= 0.1, 3 <= 0.5, 3 <= 1.0 -> rank 3 lies at the top of the 0.5 bucket
    assert evaluate(p50, stack) == pytest.approx(0.5)
    p95 = QuantileProbe(kind="quantile", service="crowd", metric="crowd_join_latency_seconds", q=0.95)
    assert 0.5 < evaluate(p95, stack) <= 1.0


def test_instance_state_and_counts(stack):
    assert evaluate(StateProbe(kind="state", instance="edge-1"), stack) == "exited"
    assert evaluate(StateProbe(kind="state", service="edge"), stack) == 1
    assert evaluate(StateProbe(kind="state", service="crowd", count="exited"), stack) == 1


def test_histogram_quantile_interpolates_like_prometheus():
    text = (
        "# TYPE h histogram\n"
        'h_bucket{le="1"} 0\nh_bucket{le="2"} 10\nh_bucket{le="+Inf"} 10\nh_count 10\nh_sum 15\n'
    )
    samples = parse_samples(text)
    assert histogram_quantile(samples, "h", 0.5, {}) == pytest.approx(1.5)
    assert histogram_quantile(parse_samples("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\nh_count 0\nh_sum 0\n"), "h", 0.5, {}) is None


def test_fill_keeps_types_of_whole_placeholders():
    assert fill({"n": "{listeners}", "room": "r-{room}", "l": ["{b}"]}, {"listeners": 5, "room": "x", "b": "acct"}) == {
        "n": 5, "room": "r-x", "l": ["acct"]}
    with pytest.raises(Exception, match="missing parameter 'room'"):
        fill("/rooms/{room}", {})


# --- windowed probes ----------------------------------------------------------------

from chaos import scrapes  # noqa: E402
from chaos.probes import RateProbe  # noqa: E402


class Clock:
    """A monotonic clock the test moves by hand (scrape times, hence windows, become exact)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(scrapes.time, "monotonic", fake)
    return fake


class Crowd:
    """A crowd instance whose metrics the test changes between scrapes (a real HTTP server)."""

    def __init__(self) -> None:
        self.reg = CollectorRegistry()
        self.gap = Histogram("crowd_frame_gap_seconds", "", buckets=(0.1, 0.5, 1.0, 5.0), registry=self.reg)
        self.joins = Counter("crowd_joins_attempted_total", "", registry=self.reg)
        self.ok = Counter("crowd_joins_succeeded_total", "", registry=self.reg)
        self.routes = {"/metrics": ("text/plain", b"")}
        self.server = Server(self.routes)

    def publish(self) -> None:
        self.routes["/metrics"] = ("text/plain", generate_latest(self.reg))


@pytest.fixture
def crowd():
    c = Crowd()
    yield c
    c.server.close()


def one_crowd(c: Crowd) -> FakeStack:
    return FakeStack({"crowd-1": ("crowd", c.server, "running")})


def test_windowed_quantile_is_the_last_window_only(crowd, clock):
    stack = one_crowd(crowd)
    windowed = QuantileProbe(kind="quantile", service="crowd", metric="crowd_frame_gap_seconds", q=0.99, window="5s")
    cumulative = QuantileProbe(kind="quantile", service="crowd", metric="crowd_frame_gap_seconds", q=0.99)
    for _ in range(1000):
        crowd.gap.observe(0.05)
    crowd.publish()
    assert evaluate(windowed, stack) is None  # one scrape: no increase to measure yet
    clock.now += 1
    assert evaluate(windowed, stack) is None  # nothing observed since: no value, like Prometheus' NaN
    for _ in range(10):
        crowd.gap.observe(3.0)  # a disturbance: 10 long gaps
    crowd.publish()
    clock.now += 1
    assert 1.0 < evaluate(windowed, stack) <= 5.0  # the window holds only the long gaps
    assert evaluate(cumulative, stack) <= 0.1  # since process start they barely move the p99
    for _ in range(100):
        crowd.gap.observe(0.05)
    crowd.publish()
    clock.now += 6  # the long gaps slid out of the 5s window
    assert evaluate(windowed, stack) is not None and evaluate(windowed, stack) <= 0.1


def test_window_from_a_placeholder_and_cumulative_on_request(crowd, clock):
    stack = one_crowd(crowd)
    probe = QuantileProbe(kind="quantile", service="crowd", metric="crowd_frame_gap_seconds", q=0.5,
                          window="{window}", params={"window": "5s"})
    crowd.gap.observe(0.05)
    crowd.publish()
    evaluate(probe, stack)
    crowd.gap.observe(0.7)
    crowd.publish()
    clock.now += 1
    assert 0.5 < evaluate(probe, stack) <= 1.0
    assert evaluate(probe, stack, {"window": "cumulative"}) <= 0.5  # both observations count
    with pytest.raises(Exception, match="window '5 parsecs'"):
        evaluate(probe, stack, {"window": "5 parsecs"})


def test_rate_and_windowed_ratio(crowd, clock):
    stack = one_crowd(crowd)
    rate = RateProbe(kind="rate", service="crowd", metric="crowd_joins_attempted", window="10s")
    ratio = RatioProbe(kind="ratio", service="crowd", numerator={"metric": "crowd_joins_succeeded_total"},
                       denominator={"metric": "crowd_joins_attempted_total"}, window="10s")
    crowd.joins.inc(100)
    crowd.ok.inc(100)
    crowd.publish()
    assert evaluate(rate, stack) is None
    crowd.joins.inc(20)
    crowd.ok.inc(5)
    crowd.publish()
    clock.now += 4
    assert evaluate(rate, stack) == pytest.approx(20 / 4)
    assert evaluate(ratio, stack) == pytest.approx(5 / 20)  # joins failing now, though 105/120 succeeded overall
    cumulative = RatioProbe(kind="ratio", service="crowd", numerator={"metric": "crowd_joins_succeeded_total"},
                            denominator={"metric": "crowd_joins_attempted_total"})
    assert evaluate(cumulative, stack) == pytest.approx(105 / 120)


def test_increase_counts_resets_as_prometheus_does():
    def at(t: float, value: float | None) -> scrapes.Scrape:
        return scrapes.Scrape(t, {} if value is None else {("c_total", ()): value})

    # 10 -> 15 (+5), restart -> 3 (+3), -> 5 (+2); a scrape where the series is absent is skipped
    span = [at(0, 10), at(1, 15), at(2, None), at(3, 3), at(4, 5)]
    assert scrapes.increase(span) == {("c_total", ()): 10}
    # a series born inside the window counts from zero
    assert scrapes.increase([at(0, None), at(1, 7)]) == {("c_total", ()): 7}


def test_history_window_starts_at_the_last_scrape_before_it():
    history = scrapes.ScrapeHistory()
    history.want(5)
    kept = [scrapes.Scrape(float(t), {("c_total", ()): float(t)}) for t in range(20)]
    for s in kept:
        history.add("crowd", "crowd-1", "/metrics", s)
    span = history.window("crowd", "crowd-1", "/metrics", kept[-1], 5)
    assert [s.t for s in span] == [14.0, 15.0, 16.0, 17.0, 18.0, 19.0]
    assert scrapes.increase(span) == {("c_total", ()): 5.0}
    # pruned to the longest window asked for (plus one scrape before it): memory stays bounded
    assert len(history._scrapes[("crowd", "crowd-1", "/metrics")]) <= 8


def test_window_specs_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a duration"):
        QuantileProbe(kind="quantile", service="crowd", metric="m", q=0.5, window="5x")
    with pytest.raises(ValidationError, match="window"):
        RateProbe(kind="rate", service="crowd", metric="m")  # a rate has no meaning without a window
    with pytest.raises(ValidationError, match="at most 600s"):
        RateProbe(kind="rate", service="crowd", metric="m", window="1h")
    assert QuantileProbe(kind="quantile", service="crowd", metric="m", q=0.5, window="cumulative").window == "cumulative"


def test_the_reader_keeps_the_reason_of_a_read_without_a_value():
    from chaos.run.observe import ProbeReader

    body = b'{"error": "state unreachable: TimeoutError"}'
    control = Server({"/rooms/launch": ("application/json", body, 503)})

    class Stack(FakeStack):
        def probe(self, name, **params):
            return evaluate(HttpJsonProbe(kind="http_json", service="control", path="/rooms/{room}", field=name),
                            self, params)

    reader = ProbeReader(Stack({"control-1": ("control", control, "running")}))  # type: ignore[arg-type]
    try:
        assert reader.read("state", {"room": "launch"}) is None
        assert reader.errors["state{room=launch}"].startswith("HTTP 503 from ")
        assert "TimeoutError" in reader.errors["state{room=launch}"]
    finally:
        control.close()
