"""Toxic types: registry, attribute parsing and validation, slicer cuts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.proxy.toxics import REGISTRY, InvalidAttributes
from chaos.proxy.toxics.slicer import cut_points


def test_registry_has_every_toxiproxy_type():
    assert set(REGISTRY) == {"noop", "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                             "limit_data"}
    for type_name, cls in REGISTRY.items():
        assert cls.type_name == type_name


def test_missing_attributes_default_to_zero_as_in_toxiproxy():
    assert REGISTRY["latency"].from_attributes({"latency": 5}).as_json() == {"latency": 5, "jitter": 0}
    assert REGISTRY["timeout"].from_attributes(None).as_json() == {"timeout": 0}


def test_update_merges_onto_current_values():
    current = REGISTRY["latency"].from_attributes({"latency": 5, "jitter": 2})
    merged = REGISTRY["latency"].from_attributes({"jitter": 3}, base=current.as_json())
    assert merged.as_json() == {"latency": 5, "jitter": 3}


@pytest.mark.parametrize("attributes", [{"latency": -1}, {"latency": "1"}, {"latency": True}, {"latency": 0.5}, []])
def test_bad_attributes_are_refused(attributes):
    with pytest.raises(InvalidAttributes):
        REGISTRY["latency"].from_attributes(attributes)


def test_integral_floats_are_accepted():
    assert REGISTRY["bandwidth"].from_attributes({"rate": 100.0}).as_json() == {"rate": 100}


def test_slicer_needs_a_size_and_smaller_variation():
    with pytest.raises(InvalidAttributes):
        REGISTRY["slicer"].from_attributes({"average_size": 0})
    with pytest.raises(InvalidAttributes):
        REGISTRY["slicer"].from_attributes({"average_size": 4, "size_variation": 4})
    REGISTRY["slicer"].from_attributes({"average_size": 4, "size_variation": 3})


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
