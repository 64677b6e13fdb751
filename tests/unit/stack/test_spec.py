"""Stack file parsing and validation: the reference stack loads; each mistake is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.stack.errors import StackFileError
from chaos.stack.spec import apply_scale, load_stack, loads_stack, parse_scale

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "docker" / "stack.yaml"


def reference_text() -> str:
    return REFERENCE.read_text()


def test_reference_stack_loads_with_everything_the_issue_asks_for():
    stack = load_stack(REFERENCE)
    spec = stack.spec
    assert set(spec.services) == {"proxy", "state", "control", "edge", "supervisor", "host", "crowd"}
    assert spec.services["edge"].replicas == 3
    assert spec.services["supervisor"].replicas == 4
    assert spec.services["host"].replicas == 2
    assert spec.automation and spec.automation.service == "supervisor"
    assert set(spec.link_pairs()) == {
        ("control", "state"), ("edge", "state"), ("supervisor", "state"),
        ("host", "control"), ("host", "edge"), ("crowd", "control"), ("crowd", "edge"),
    }
    assert {"ci", "gameday"} <= set(spec.profiles)
    for probe in ("room.state", "room.edge", "room.host", "room.relaunches", "room.relaunch_time",
                  "crowd.connected_ratio", "crowd.join_latency_p95", "crowd.kicks", "crowd.frame_gap_p99"):
        assert probe in spec.probes
    assert spec.selectors["hosting"].probe == "room.edge"
    assert {"start", "surge", "drain"} <= set(spec.load)


def test_profiles_are_compressed_in_ci_and_realistic_for_gamedays():
    spec = load_stack(REFERENCE).spec
    ci, gameday = spec.profile_env("ci"), spec.profile_env("gameday")
    assert set(ci) == set(gameday)
    assert ci["HEARTBEAT_INTERVAL"].endswith("ms") and gameday["HEARTBEAT_INTERVAL"] == "1s"


def _error(text: str) -> str:
    with pytest.raises(StackFileError) as err:
        loads_stack(text, "bad.yaml")
    message = str(err.value)
    assert "\n" not in message
    return message


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_service_in_a_link_names_file_line_and_link():
    text = reference_text().replace("  - crowd->edge\n", "  - crowd->egde\n")
    message = _error(text)
    assert message.startswith(f"bad.yaml:{_line_of(text, 'crowd->egde')}:")
    assert "links[6]" in message and "unknown service 'egde'" in message


def test_missing_image_names_the_service_field():
    text = reference_text().replace("  control:\n    image: services", "  control:\n    image: nosuch")
    message = _error(text)
    assert f"bad.yaml:{_line_of(text, 'image: nosuch')}:" in message
    assert "services.control.image" in message and "missing image 'nosuch'" in message


def test_two_services_may_listen_on_one_port():
    # each instance has its own network namespace (docker) or its own free port (local): Compose projects do this
    text = reference_text().replace("port: 8090", "port: 8080")
    assert loads_stack(text, "ok.yaml").spec.services["supervisor"].port == 8080


def test_port_inside_the_proxy_listener_range_names_the_service():
    text = reference_text().replace("port: 8090", "port: 20005")
    message = _error(text)
    assert "port clash" in message and "listener range" in message
    supervisor_port_line = _line_of(text, "audioroom.supervisor") + 1
    assert message.startswith(f"bad.yaml:{supervisor_port_line}:") and "services.supervisor.port" in message


def test_zero_replicas_for_a_required_service():
    text = reference_text().replace("    replicas: 3\n", "    replicas: 0\n")
    message = _error(text)
    assert f"bad.yaml:{_line_of(text, 'replicas: 0')}:" in message
    assert "required service 'edge' has replica count 0" in message


def test_zero_replicas_allowed_for_optional_service():
    text = reference_text().replace("    required: false\n", "    required: false\n    replicas: 0\n")
    assert loads_stack(text).spec.services["crowd"].replicas == 0


def test_unknown_field_and_wrong_type_are_located():
    text = reference_text().replace("    replicas: 4\n", "    replicaz: 4\n")
    message = _error(text)
    assert "services.supervisor.replicaz: unknown key; did you mean 'replicas'?" in message
    assert f"bad.yaml:{_line_of(text, 'replicaz')}:" in message
    text = reference_text().replace("port: 8765", "port: high")
    assert "services.edge.port" in _error(text)


def test_probe_errors_drop_the_union_tag_from_the_path():
    text = reference_text().replace("    q: 0.95\n", "    q: 1.5\n")
    message = _error(text)
    assert "probes.crowd.join_latency_p95.q" in message and "quantile." not in message.split(":")[3]


def test_invalid_yaml_is_one_line_with_position():
    message = _error("name: x\nservices: [\n")
    assert message.startswith("bad.yaml:") and "not valid YAML" in message


def test_missing_file():
    with pytest.raises(StackFileError, match="no such stack file"):
        load_stack("/nonexistent/stack.yaml")


def test_scale_parsing_and_application():
    spec = load_stack(REFERENCE).spec
    assert parse_scale("edge=2, supervisor=1") == {"edge": 2, "supervisor": 1}
    scaled = apply_scale(spec, {"edge": 2, "supervisor": 1})
    assert scaled.services["edge"].replicas == 2 and scaled.services["supervisor"].replicas == 1
    assert spec.services["edge"].replicas == 3  # the original is untouched
    with pytest.raises(StackFileError, match="required service 'edge'"):
        apply_scale(spec, {"edge": 0})
    with pytest.raises(StackFileError, match="unknown service 'edges'"):
        apply_scale(spec, {"edges": 2})
    with pytest.raises(StackFileError, match="must read service=count"):
        parse_scale("edge:3")
    with pytest.raises(StackFileError, match="unknown profile 'fast'"):
        spec.profile_env("fast")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("  - crowd->edge\n", "  - crowd->proxy\n", "touches the proxy itself"),
        ("  - crowd->edge\n", "  - crowd->edge\n  - crowd->edge\n", "declared twice"),
        ("  - crowd->edge\n", "  - crowd to edge\n", "must read 'client->server'"),
        ("automation:\n  service: supervisor\n", "automation:\n  service: staff\n", "automation.service: unknown service 'staff'"),
        ("    probe: room.edge\n", "    probe: room.where\n", "selectors.hosting.probe: unknown probe 'room.where'"),
        ("    params: {room: launch}\n    service: edge\n", "    params: {room: launch}\n    service: edges\n", "selectors.hosting.service: unknown service 'edges'"),
        ("    kind: state\n    service: supervisor\n", "    kind: state\n    service: supervisors\n", "probes.supervisor.running.service: unknown service"),
        ("    kind: state\n    service: supervisor\n", "    kind: state\n", "exactly one of instance or service"),
        ("    build: services", "    build: services\n    tag: x:1", "exactly one of build, tag or context"),
        ("  listeners_from: 20000", "  listeners_from: 8000", "inside the proxy's listener range"),
        ("default_profile: ci", "default_profile: fast", "default_profile: unknown profile 'fast'"),
    ],
)
def test_each_mistake_is_one_located_line(old, new, expected):
    text = reference_text()
    assert old in text
    message = _error(text.replace(old, new, 1))
    assert expected in message and message.startswith("bad.yaml:")


def test_windows_and_history_sources_are_checked_with_their_place():
    text = reference_text().replace('    window: "{window}"\n    params: {window: 5s}\n    description: silences per second',
                                    '    window: 5 parsecs\n    description: silences per second', 1)
    message = _error(text)
    assert "probes.crowd.silence_rate.window" in message and "not a duration" in message
    text = reference_text().replace('listeners: {service: crowd, path: "/history?room={room}"}',
                                    'listeners: {service: croud, path: "/history?room={room}"}')
    message = _error(text)
    assert "history.listeners.service: unknown service 'croud'" in message
    assert f"bad.yaml:{_line_of(text, 'croud')}:" in message
    spec = loads_stack(reference_text()).spec
    assert spec.history.listeners.service == "crowd" and spec.history.relaunches.field == "relaunch_history"
    assert spec.probes["crowd.frame_gap_p99"].window == "{window}"  # windowed by default (5s), cumulative on request
