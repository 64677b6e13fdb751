"""Helpers of the hostile-input and fuzz tests (experiment and stack files).

Loaded by tests/conftest.py as the module ``roomquake_fuzzing``. Strategies
(Hypothesis) are kept apart from the checks that judge their outcomes:

- ``TREES``: random YAML trees (scalars, lists, mappings with likely keys);
- ``mutate(document)``: one to three structural changes to a parsed file
  (a key dropped, renamed or given a random tree, a list item duplicated);
- ``corrupt(samples)``: bytes of a file replaced, inserted or removed, and
  YAML indicators (``&``, ``*``, ``!``, ``{``, ``---``, tabs, NUL) spliced in.

``bounded`` runs a call under CPU-time and traced-memory bounds with wide
margins: each file costs milliseconds and a few MiB; the bounds catch a
blow-up such as an alias bomb's expansion, not a slow machine.
``one_located_line`` is the promised shape of every refusal.
"""

from __future__ import annotations

import json
import os
import re
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")

CPU_BOUND_S = 5.0
MEMORY_BOUND = 64 * 2**20
# ROOMQUAKE_FUZZ_EXAMPLES=2000 for a longer hunt; 150 keeps the unit tier quick.
FUZZ = settings(max_examples=int(os.environ.get("ROOMQUAKE_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# file:line:col: field: message (a field is whatever the author's keys are), or the file as a whole (size, kind)
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): (?P<field>.+?): (?P<message>\S.*)$")
UNLOCATED = re.compile(r"^(?P<file>.+?): file: (?P<message>\S.*)$")


def one_located_line(text: str) -> None:
    assert "\n" not in text.strip(), text
    assert LOCATED.match(text) or UNLOCATED.match(text), text
    for leak in ("Traceback", "TaggedScalar", " object at 0x", "CommentedMap"):
        assert leak not in text, text


def bounded(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, asserting its CPU time and traced memory stay within the bounds."""
    tracemalloc.start()
    began = time.process_time()
    try:
        return call(*args)
    finally:
        cpu = time.process_time() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert cpu < CPU_BOUND_S, f"{cpu:.2f} s of CPU"
        assert peak < MEMORY_BOUND, f"{peak / 2**20:.0f} MiB traced"


# ----------------------------------------------------------------- strategies

KEYS = st.sampled_from(["title", "stack", "method", "fault", "probe", "expect", "within", "at", "id", "target",
                        "service", "link", "latency", "steady_state", "recovery", "load", "scale", "env", "after",
                        "parallel", "wait", "known_weakness", "deviates", "observe", "with", "throughout",
                        "name", "services", "image", "images", "command", "port", "replicas", "links", "probes",
                        "kind", "selectors", "profiles", "proxy", "health", "steps"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["1s", "300ms", "-5s", "edge->state", ">= 0.9", "live", "kill", "services"]))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=6)),
    max_leaves=40)


def mutate(*documents: Any) -> st.SearchStrategy[Any]:
    """One of ``documents`` (parsed files) with one to three structural changes."""

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        data = json.loads(json.dumps(draw(st.sampled_from(documents))))
        for _ in range(draw(st.integers(1, 3))):
            node, parents = data, []
            for _ in range(draw(st.integers(0, 5))):  # walk down a random path
                if isinstance(node, dict) and node:
                    key = draw(st.sampled_from(sorted(node)))
                elif isinstance(node, list) and node:
                    key = draw(st.integers(0, len(node) - 1))
                else:
                    break
                parents.append((node, key))
                node = node[key]
            if not parents:
                continue
            parent, key = parents[-1]
            action = draw(st.sampled_from(["drop", "replace", "rename", "duplicate"]))
            if action == "drop":
                del parent[key]
            elif action == "replace":
                parent[key] = draw(TREES)
            elif action == "rename" and isinstance(parent, dict):
                parent[str(key)[:-1] + draw(st.text(min_size=1, max_size=2))] = parent.pop(key)
            elif action == "duplicate" and isinstance(parent, list):
                parent.insert(key, parent[key])
        return data

    return mutated()


INDICATORS = [b"&a ", b"*a", b"!t ", b"!!python/object ", b"{", b"}", b"[", b"]", b": ", b"- ", b"---\n", b"\t",
              b"\x00", b"\xff", b"'", b'"', b"|", b">", b"? ", b"%YAML 1.1\n", b"<<: ", b"#", b"\n  "]


def corrupt(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """One of ``samples`` with one to six byte-level changes."""

    @st.composite
    def corrupted(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(data)))
            action = draw(st.sampled_from(["replace", "insert", "delete", "indicator"]))
            if action == "replace" and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif action == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
            elif action == "delete":
                del data[at:at + draw(st.integers(1, 12))]
            else:
                data[at:at] = draw(st.sampled_from(INDICATORS))
        return bytes(data)

    return corrupted()
