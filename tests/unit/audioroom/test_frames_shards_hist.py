import pytest
from hypothesis import given
from hypothesis import strategies as st

from audioroom import fasthist, frames, shards


@given(room=st.text(min_size=1, max_size=60), gen=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**64 - 1),
       sent=st.floats(0, 4e12), size=st.integers(0, 400))
def test_frames_round_trip_and_peek(room, gen, seq, sent, size):
    frame = frames.Frame(room, gen, seq, sent)
    data = frames.encode(frame, size)
    assert len(data) >= size
    assert frames.decode(data) == frame
    assert frames.peek(data) == (gen, seq, sent)


def test_bad_frames_are_rejected_clearly():
    with pytest.raises(frames.FrameError, match="shorter than"):
        frames.decode(b"\xa7\x01")
    with pytest.raises(frames.FrameError, match="not an audio frame"):
        frames.decode(bytes(64))
    with pytest.raises(frames.FrameError, match="longer than 255"):
        frames.encode(frames.Frame("x" * 300, 1, 1, 1.0))


def test_shards_are_stable_and_fair_share_covers_all():
    assert shards.shard_of("launch", 16) == shards.shard_of("launch", 16) < 16
    assert {shards.shard_of(f"r{i}", 8) for i in range(200)} == set(range(8))
    for total in (1, 7, 8, 16):
        for live in range(1, 6):
            assert shards.fair_share(total, live) * live >= total
    assert shards.fair_share(8, 4) == 2 and shards.fair_share(8, 1) == 8 and shards.fair_share(8, 0) == 8


def test_fast_histogram_counts_quantiles_and_prometheus_family():
    h = fasthist.FastHistogram(fasthist.DELAY_BOUNDS_MS)
    for value in [1] * 90 + [240] * 9 + [900]:
        h.observe(value)
    assert h.total == 100 and h.at_most(250) == 99 and h.at_most(5) == 90
    assert h.quantile(0.5) <= 5 and 200 < h.quantile(0.99) <= 250
    family = h.family("crowd_frame_delay_seconds", "doc")
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.25"] == 99 and buckets["+Inf"] == 100
    assert fasthist.FastHistogram((1, 2)).quantile(0.5) is None
