"""The --config file: Toxiproxy's format plus toxics, hostile files refused
with one located line (never a traceback, always quickly)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.proxy.config import MAX_BYTES, MAX_DEPTH, ConfigError, parse_config, read_config

HERE = Path("proxies.json")


def parse(text: str | bytes) -> list:
    return parse_config(HERE, text.encode() if isinstance(text, str) else text)


def refused(text: str | bytes) -> str:
    with pytest.raises(ConfigError) as err:
        parse(text)
    message = str(err.value)
    assert "\n" not in message and message.startswith("proxies.json")
    return message


def test_toxiproxy_format_with_go_style_keys_and_toxics():
    entries = parse(json.dumps([
        {"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": True},
        {"Name": "db", "UPSTREAM": "db:5432", "toxics": [{"type": "latency", "attributes": {"latency": 5}}]},
    ]))
    assert entries[0].name == "redis" and entries[1].body == {"Name": "db", "UPSTREAM": "db:5432"}
    assert entries[1].toxics[0][0]["type"] == "latency"
    assert entries[1].toxics[0][1] == "proxies.json:1:142"  # where the toxic starts


def test_errors_name_file_line_column_and_field():
    assert refused('[\n {"name": "a", "upstream": 5}\n]') == (
        "proxies.json:2:28: proxy 1 (a): field 'upstream' must be a string, found a number")
    assert refused('[{"name": "a"}]') == "proxies.json:1:2: proxy 1 (a): missing required field: upstream"
    assert refused('{"name": "a"}') == "proxies.json:1:1: expected a JSON array of proxies, found an object"
    assert refused('[1]') == "proxies.json:1:2: proxy 1: expected an object, found a number"
    assert refused('[{"name": "a", "upstream": "b:1", "toxics": [7]}]').endswith("toxic 1: expected an object, "
                                                                                  "found a number")
    assert "not valid JSON" in refused('[{"name": }]')
    assert "NaN" in refused('[NaN]')
    assert refused("[" * (MAX_DEPTH + 1)) == f"proxies.json:1:{MAX_DEPTH + 1}: nested deeper than {MAX_DEPTH} levels"
    assert refused(b'[{"name": "\xff"}]') == "proxies.json:1:12: not UTF-8 text"


def test_size_limit_is_checked_before_reading(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="over the 4 MiB limit"):
        read_config(big)
    with pytest.raises(ConfigError, match="cannot read"):
        read_config(tmp_path / "missing.json")


def test_unknown_keys_are_ignored_with_a_warning(caplog):
    entries = parse('[{"name": "a", "upstream": "b:1", "upsteam": "c:1"}]')
    assert entries[0].body == {"name": "a", "upstream": "b:1"}
    assert "unknown field 'upsteam'" in caplog.text and "proxies.json:1:" in caplog.text


# ------------------------------------------------------------------ fuzz

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_trees = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(
        ["name", "listen", "upstream", "enabled", "toxics", "type", "stream", "attributes", "NAME", "x"]), inner,
        max_size=5)), max_leaves=30)
SHIPPED = json.dumps([{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379",
                       "toxics": [{"type": "latency", "stream": "upstream", "attributes": {"latency": 5}}]},
                      {"name": "db", "upstream": "db:5432", "enabled": False}], indent=1).encode()


def mutate(data: bytes, draw) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del out[at:at + draw(st.integers(1, 20))]
        elif op == "dup":
            out[at:at] = out[at:at + draw(st.integers(1, 40))] * draw(st.integers(1, 50))
        else:
            out[at:at] = draw(st.sampled_from([b"[", b"{", b"]", b"}", b'"', b",", b":", b"\\", b"\x00", b"\xff",
                                               b"NaN", b"1e999", b"-", b"[" * 200]))
    return bytes(out)


@st.composite
def hostile(draw) -> bytes:
    if draw(st.booleans()):
        return json.dumps(draw(json_trees)).encode()
    return mutate(SHIPPED, draw)


@settings(max_examples=300, deadline=5000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=hostile())
def test_any_file_is_a_config_or_one_located_line(raw):
    started = time.monotonic()
    try:
        entries = parse(raw)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and message.startswith("proxies.json")
        assert "Traceback" not in message
    else:
        for entry in entries:
            assert isinstance(entry.body, dict) and entry.where.startswith("proxies.json:")
    assert time.monotonic() - started < 5  # generous bound: files are refused or read at once
