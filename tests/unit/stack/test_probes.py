"""Probe evaluation on real HTTP servers (loopback) serving JSON and Prometheus text."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chaos.probes import (
    HttpJsonProbe, MetricProbe, QuantileProbe, RatioProbe, StateProbe, evaluate, fill, histogram_quantile, parse_samples,
)


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
                ctype, body = routes_[self.path]
                self.send_response(200)
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
