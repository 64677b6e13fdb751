"""The per-listener history checker on hand-made histories: every finding, and the judgement of assertions."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.checkers.history import check, check_room, nearest_rank
from chaos.checkers.relaunches import FaultWindow, attribute
from chaos.experiment import model as m
from chaos.run.histories import Collected, judge

T0 = 1_764_470_000.0  # wall clock of the hand-made run


def seg(gen: int, first_t: float, last_t: float, *, edge: str = "edge-1", dups: int = 0, reorders: int = 0,
        max_gap_s: float = 0.1) -> dict[str, Any]:
    frames = int((last_t - first_t) * 10) + 1
    return {"gen": gen, "edge": edge, "first_seq": 0, "last_seq": frames - 1, "first_t": T0 + first_t,
            "last_t": T0 + last_t, "frames": frames, "dups": dups, "reorders": reorders, "max_gap_s": max_gap_s}


def listener(ident: str, *segments: dict[str, Any], active: bool = True, room: str = "launch",
             events: list[dict[str, Any]] | None = None, joined: float = 0.0, truncated: bool = False) -> dict[str, Any]:
    return {"id": ident, "room": room, "joined_at": T0 + joined, "active": active, "segments": list(segments),
            "events": events or [], "truncated": truncated}


def doc(instance: str, *listeners: dict[str, Any], now: float = 30.0, dropped: int = 0) -> dict[str, Any]:
    return {"instance": instance, "now": T0 + now, "truncated_listeners": dropped, "listeners": list(listeners)}


RELAUNCH = [{"generation": 1, "edge": "edge-2", "reason": "edge_lost", "failed_at": T0 + 10.0, "detected_at": T0 + 11.0,
             "completed_at": T0 + 11.5}]


def test_a_clean_relaunch_everyone_back() -> None:
    docs = [doc("crowd-1", listener("c1/1", seg(0, 1, 10), seg(1, 12, 30)), listener("c1/2", seg(0, 1, 10), seg(1, 13, 30))),
            doc("crowd-2", listener("c2/1", seg(0, 2, 10), seg(1, 12.5, 30)))]
    report = check(docs, {"launch": RELAUNCH})["launch"]
    assert report.listeners == 3 and report.active == 3 and report.never_heard_count == 0
    assert report.split_brain_count == 0 and report.duplicates == 0 and report.out_of_order == 0
    assert report.max_gap_s == pytest.approx(3.0)  # c1/2: last gen-0 frame at 10, first gen-1 frame at 13
    (back,) = report.relaunches
    assert back.generation == 1 and back.listeners == 3 and back.never == [] and back.never_count == 0
    assert back.back_within == {"10": 1.0}
    assert back.back_s_max == pytest.approx(1.5)  # from the relaunch (11.5) to c1/2's first frame (13)


def test_listeners_that_never_heard_the_relaunched_room() -> None:
    docs = [doc("crowd-1",
                listener("stayed-silent", seg(0, 1, 10)),  # still connected, never heard generation 1
                listener("gave-up", seg(0, 1, 10), active=False, events=[{"t": T0 + 20, "kind": "gave_up"}]),
                listener("drained", seg(0, 1, 5), active=False),  # left on its own before: not counted
                listener("back", seg(0, 1, 10), seg(1, 25, 30)))]  # back, but 13.5 s after the relaunch
    report = check(docs, {"launch": RELAUNCH}, back_within=[10, 20])["launch"]
    assert report.never_heard_count == 2 and set(report.never_heard_relaunch) == {"stayed-silent", "gave-up"}
    (back,) = report.relaunches
    assert back.listeners == 3 and back.back_within == {"10": 0.0, "20": pytest.approx(1 / 3)}
    assert report.gave_up == 1
    # largest gaps: the silent one until now (20 s), the one that gave up until it did (10 s)
    assert report.max_gap_s == pytest.approx(20.0) and report.worst_gaps[0] == ("stayed-silent", pytest.approx(20.0))


def test_duplicates_and_frames_out_of_order_are_counted() -> None:
    docs = [doc("crowd-1", listener("a", seg(0, 1, 30, dups=2, reorders=1)), listener("b", seg(0, 1, 30, dups=1)),
                listener("c", seg(0, 1, 30)))]
    report = check(docs, {"launch": []})["launch"]
    assert (report.duplicates, report.duplicate_listeners) == (3, 2)
    assert (report.out_of_order, report.out_of_order_listeners) == (1, 1)
    assert report.relaunches == []


def test_split_brain_is_an_older_generation_after_a_newer_one() -> None:
    docs = [doc("crowd-1", listener("torn", seg(0, 1, 10), seg(1, 12, 20, edge="edge-2"), seg(0, 20.5, 21, edge="edge-1"),
                                    seg(1, 21.5, 30, edge="edge-2")),
                listener("fine", seg(0, 1, 10), seg(1, 12, 30, edge="edge-2")))]
    report = check(docs, {"launch": RELAUNCH})["launch"]
    assert report.split_brain_count == 1
    (found,) = report.split_brain
    assert (found.listener, found.generation, found.after, found.edge) == ("torn", 0, 1, "edge-1")
    assert found.t == pytest.approx(T0 + 20.5)


def test_largest_gap_inside_segments_between_them_and_the_p99() -> None:
    many = [listener(f"l{i}", seg(0, 1, 30, max_gap_s=0.1 * (i + 1))) for i in range(100)]
    report = check([doc("crowd-1", *many)], {"launch": []})["launch"]
    assert report.max_gap_s == pytest.approx(10.0) and report.max_gap_p99_s == pytest.approx(9.9)
    assert report.max_gap_p50_s == pytest.approx(5.0)
    assert nearest_rank([], 0.99) is None and nearest_rank([3.0], 0.99) == 3.0


def test_relaunches_are_inferred_from_generations_without_records() -> None:
    docs = [doc("crowd-1", listener("a", seg(3, 1, 10), seg(4, 12, 30)), listener("b", seg(3, 1, 10), seg(4, 14, 30)))]
    report = check(docs)["launch"]
    (back,) = report.relaunches
    assert back.inferred and back.generation == 4 and back.at == pytest.approx(T0 + 12)
    assert back.back_within == {"10": 1.0}


def test_rooms_and_capped_histories_are_kept_apart() -> None:
    docs = [doc("crowd-1", listener("a", seg(0, 1, 30), truncated=True), listener("x", seg(0, 1, 30), room="other"),
                dropped=4)]
    reports = check(docs, {"launch": []})
    assert set(reports) == {"launch", "other"} and reports["launch"].listeners == 1
    assert reports["launch"].truncated == 1 and reports["launch"].dropped == 4
    assert check_room("nowhere", [], None).listeners == 0


# --- judging an experiment's history: assertions --------------------------------------------


def spec(**keys: Any) -> m.HistoryCheck:
    return m.HistoryCheck.model_validate(keys)


def judged(keys: dict[str, Any], docs: list[dict[str, Any]], records: list[dict[str, Any]] | None = RELAUNCH):
    report = check(docs, {"launch": records} if records is not None else None, rooms=["launch"], back_within=[10])["launch"]
    return {j.key: j for j in judge(spec(**keys), Collected("launch", report, records))}


ALL = {"no_split_brain": True, "never_heard_relaunch": "== 0", "max_gap": "< 10s", "max_gap_p99": "< 3s",
       "duplicates": "== 0", "out_of_order": "== 0", "relaunches": ">= 1",
       "back_within": {"seconds": 10, "fraction": ">= 0.9"}}


def test_every_assertion_holds_on_a_clean_history() -> None:
    docs = [doc("crowd-1", listener("a", seg(0, 1, 10), seg(1, 12, 30)), listener("b", seg(0, 1, 10), seg(1, 12.2, 30)))]
    results = judged(ALL, docs)
    assert set(results) == set(m.HISTORY_ASSERTIONS)
    assert all(j.ok for j in results.values()), [j.message for j in results.values() if not j.ok]
    assert results["max_gap_p99"].check == "history.max_gap_p99"


def test_every_assertion_fails_with_a_message_naming_what_broke() -> None:
    docs = [doc("crowd-1",
                listener("torn", seg(0, 1, 10, dups=1, reorders=2), seg(1, 12, 15), seg(0, 15.5, 16)),
                listener("lost", seg(0, 1, 10)))]
    results = judged({**ALL, "relaunches": ">= 2"}, docs)
    assert not any(j.ok for j in results.values())
    assert "torn heard gen 0 after gen 1" in results["no_split_brain"].message
    assert "1 of 2 never heard generation 1 (e.g. lost)" in results["never_heard_relaunch"].message
    assert "worst: lost 20.00s" in results["max_gap"].message
    assert "1 frames duplicates at 1 listeners" in results["duplicates"].message
    assert "2 frames out of order" in results["out_of_order"].message
    assert "1 relaunches (generations 1)" in results["relaunches"].message
    assert "generation 1: 0.5 of 2 (not met)" in results["back_within"].message


def test_back_within_without_any_relaunch_fails_and_no_history_fails_every_assertion() -> None:
    docs = [doc("crowd-1", listener("a", seg(0, 1, 30)))]
    results = judged({"back_within": {"seconds": 5, "fraction": ">= 0.9"}}, docs, records=[])
    assert not results["back_within"].ok and "never relaunched" in results["back_within"].message
    nothing = judge(spec(no_split_brain=True, max_gap="< 1s"), Collected("launch", None, None, [], ["crowd-1/history: no answer"]))
    assert [j.ok for j in nothing] == [False, False] and "crowd-1/history: no answer" in nothing[0].message


def test_a_history_block_must_assert_something() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="history asserts nothing"):
        spec(room="launch")
    with pytest.raises(ValidationError):
        spec(no_split_brain=False)  # leave it out to not assert it


# --- unexpected relaunches ----------------------------------------------------------------------


def test_a_relaunch_is_explained_only_by_a_fault_active_when_its_failure_began() -> None:
    faults = [FaultWindow("kill-edge", start=10.0, end=None), FaultWindow("slow", start=2.0, end=4.0)]
    records = [
        {"generation": 1, "reason": "edge_lost", "failed_at": T0 + 9.8, "completed_at": T0 + 11.0},  # last beat just before the kill
        {"generation": 2, "reason": "edge_lost", "failed_at": T0 + 6.5, "completed_at": T0 + 7.5},  # between faults
        {"generation": 3, "reason": "host_lost", "detected_at": T0 + 4.5, "completed_at": T0 + 4.6},  # 0.5 s after slow ended
    ]
    found = attribute(records, faults, T0)
    assert [f.explained_by for f in found] == [["kill-edge"], [], ["slow"]]
    assert [f.unexpected for f in found] == [False, True, False]
    assert found[1].failed_t == pytest.approx(6.5) and found[1].to_json()["unexpected"] is True
    assert attribute(records, [], T0)[0].unexpected  # with no fault at all, every relaunch is unexpected


def test_ids_are_capped_but_counts_are_complete() -> None:
    lost = [listener(f"l{i}", seg(0, 1, 10)) for i in range(50)]  # nobody heard generation 1
    report = check([doc("crowd-1", *lost)], {"launch": RELAUNCH})["launch"]
    assert report.never_heard_count == 50 and len(report.never_heard_relaunch) == 10
    assert report.relaunches[0].never_count == 50 and len(report.relaunches[0].never) == 10
