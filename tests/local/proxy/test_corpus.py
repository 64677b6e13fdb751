"""Differential conformance: replay tests/compat/toxiproxy/corpus-2.12.json,
requests with the answers Toxiproxy 2.12 gives (taken from its source),
against our server, or against TOXIPROXY_URL when set, so drift shows."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

CORPUS = Path(__file__).resolve().parents[2] / "compat" / "toxiproxy" / "corpus-2.12.json"
CASES = json.loads(CORPUS.read_text())["cases"]
_runs = itertools.count()


def _fill(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value.replace("{p}", prefix)
    if isinstance(value, list):
        return [_fill(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, prefix) for k, v in value.items()}
    return value


def matches(pattern: Any, value: Any, where: str = "$") -> None:
    if isinstance(pattern, str) and pattern == "$any":
        return
    if isinstance(pattern, str) and pattern.startswith("$listen:"):
        host = pattern[len("$listen:"):]
        assert isinstance(value, str) and re.fullmatch(re.escape(host) + r":[1-9]\d*", value), (where, value)
        return
    if isinstance(pattern, dict):
        assert isinstance(value, dict) and list(value) == list(pattern), (where, value)  # field sets, in Go's order
        for key in pattern:
            matches(pattern[key], value[key], f"{where}.{key}")
        return
    if isinstance(pattern, list):
        assert isinstance(value, list) and len(value) == len(pattern), (where, value)
        for i, (p, v) in enumerate(zip(pattern, value)):
            matches(p, v, f"{where}[{i}]")
        return
    assert type(value) is type(pattern) and value == pattern, (where, value, pattern)  # 1 is not 1.0


def send(session: requests.Session, url: str, req: list, prefix: str) -> requests.Response:
    method, path = req[0], _fill(req[1], prefix)
    extra = _fill(req[2], prefix) if len(req) > 2 else {}
    kwargs: dict[str, Any] = {"headers": {"User-Agent": "roomquake-corpus", **extra.get("headers", {})}}
    if "json" in extra or "pad" in extra or "name_repeat" in extra:
        body = extra.get("json")
        if "name_repeat" in extra or "pad" in extra:
            body = dict(body or {})
        if "name_repeat" in extra:
            body["name"] = f"{prefix}big" + "x" * extra["name_repeat"]
        if "pad" in extra:
            body["pad"] = "x" * extra["pad"]
        kwargs["data"] = json.dumps(body).encode()
    elif "data" in extra:
        kwargs["data"] = extra["data"].encode()
    return session.request(method, url + path, timeout=15, allow_redirects=False, **kwargs)


def raw_exchange(url: str, raw: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(raw.encode())
        got = bytearray()
        try:
            while chunk := s.recv(65536):
                got += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return bytes(got)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_answers_match_toxiproxy_2_12(server_url, case):
    prefix = f"corpus{os.getpid()}_{next(_runs)}_"
    session = requests.Session()
    try:
        for number, step in enumerate(case["steps"], start=1):
            if "raw" in step:
                assert raw_exchange(server_url, step["raw"]) == step["expect_raw"].encode(), step
                continue
            resp = send(session, server_url, step["req"], prefix)
            expect = _fill(step["expect"], prefix)
            context = f"step {number}: {step['req'][:2]} -> {resp.status_code} {resp.headers} {resp.text[:300]!r}"
            assert resp.status_code == expect["status"], context
            if "content_type" in expect:
                assert resp.headers.get("Content-Type") == expect["content_type"], context
            if "request_id" in expect:
                assert ("X-Toxiproxy-Request-Id" in resp.headers) == expect["request_id"], context
            body = expect.get("body", {})
            if "json" in body:
                matches(body["json"], json.loads(resp.text))
            elif "text" in body:
                assert resp.text == body["text"], context
            elif body.get("empty"):
                assert resp.content == b"", context
    finally:
        for name in session.get(server_url + "/proxies", timeout=15).json():
            if name.startswith(prefix):
                session.delete(server_url + "/proxies/" + quote(name, safe=""), timeout=15)
        session.close()
