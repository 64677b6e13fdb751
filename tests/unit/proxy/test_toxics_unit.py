"""Toxic types: registry, attribute parsing and validation, slicer cuts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.proxy.toxics import REGISTRY
from chaos.proxy.toxics.base import Toxic, register
from chaos.proxy.toxics.slicer import cut_points


def test_registry_has_every_toxiproxy_type():
    assert set(REGISTRY) >= {"noop", "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                             "limit_data"}
    for type_name, cls in REGISTRY.items():
        assert cls.type_name == type_name
        assert cls.go_type  # named in Go-worded decode errors
        assert set(cls.fields.values()) <= {"int64", "int"}


def test_attributes_default_to_zero_as_in_toxiproxy():
    assert REGISTRY["latency"]().as_json() == {"latency": 0, "jitter": 0}
    assert REGISTRY["slicer"](average_size=5).as_json() == {"average_size": 5, "size_variation": 0, "delay": 0}


def test_a_new_toxic_registers_itself():
    @register
    class Probe(Toxic):
        type_name = "probe_test_only"
        go_type = "ProbeToxic"
        fields = {"x": "int64"}

    try:
        assert REGISTRY["probe_test_only"] is Probe
    finally:
        del REGISTRY["probe_test_only"]


def test_values_toxiproxy_accepts_but_are_mistakes_are_named():
    assert REGISTRY["latency"](latency=-1).mistakes()
    assert REGISTRY["bandwidth"](rate=0).mistakes()  # stalls, as in Toxiproxy
    assert REGISTRY["slicer"]().mistakes()  # average_size 0
    assert REGISTRY["slicer"](average_size=4, size_variation=4).mistakes()
    assert not REGISTRY["slicer"](average_size=4, size_variation=3).mistakes()
    assert not REGISTRY["latency"](latency=5, jitter=1).mistakes()


@pytest.mark.parametrize(("average", "variation"), [(0, 0), (-5, 3), (4, 4), (1000, 1000), (3, -2)])
def test_slicer_cuts_any_sizes_toxiproxy_accepts(average, variation):
    points = cut_points(100, average, variation, random.Random(1))
    assert points[-1] == 100 and points == sorted(set(points))


@settings(max_examples=100, derandomize=True)
@given(size=st.integers(0, 5000), average=st.integers(1, 300), frac=st.floats(0, 0.99), seed=st.integers(0, 9))
def test_slicer_cuts_cover_the_chunk_in_bounded_pieces(size, average, frac, seed):
    variation = int((average - 1) * frac)
    points = cut_points(size, average, variation, random.Random(seed))
    if size == 0:
        assert points == []
        return
    assert points[-1] == size
    pieces = [b - a for a, b in zip([0, *points], points)]
    assert all(p > 0 for p in pieces)
    if size > average + variation:
        assert max(pieces) <= average + variation


def test_slicer_cuts_are_replayable_from_a_seed():
    a = cut_points(10_000, 50, 20, random.Random("s/1"))
    b = cut_points(10_000, 50, 20, random.Random("s/1"))
    c = cut_points(10_000, 50, 20, random.Random("s/2"))
    assert a == b and a != c
