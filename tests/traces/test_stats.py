"""``trace info`` figures: a hand-computed trace, and the streamed working-set size against a
brute-force count for any chunking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.traces import EVENT_DTYPE, TraceMeta, open_trace
from migpolicy.traces.stats import SNAPSHOT, trace_stats


def test_hand_computed_lackey(tmp_path, builtin_pm) -> None:
    path = tmp_path / "tiny.lackey"
    path.write_text(" L 1000,4\n S 2000,4\n L 1008,4\nI  0400000,3\n M 5000,4\n L 1000,4\n")
    data = trace_stats(open_trace(path, builtin_pm), epoch_ns=2, top=2).as_dict()
    # accesses 0..4 (the I line is not counted); epochs of 2 accesses:
    # {0x1000, 0x2000}, {0x1000, 0x5000}, {0x1000}
    assert data["wss_bytes"] == {"avg": pytest.approx(5 / 3 * 4096), "p50": 8192.0,
                                 "p90": 8192.0, "p99": 8192.0, "max": 8192.0}
    assert (data["events"], data["accesses"], data["distinct_pages"]) == (5, 5, 3)
    assert (data["reads"], data["writes"], data["modifies"]) == (3, 1, 1)
    assert data["duration_ns"] == 4 and data["footprint_bytes"] == 3 * 4096
    assert data["hottest_pages"][0] == {"page": 0, "address": "0x1000", "accesses": 3,
                                        "share": 0.6}


class ListTrace:
    """A trace held in memory, cut into the given chunk sizes."""

    def __init__(self, events: np.ndarray, cuts: list[int], natural: int | None) -> None:
        self.events, self.cuts = events, cuts
        distinct = int(events["page"].max()) + 1
        self.page_table = np.arange(distinct) * 4096
        self.meta = TraceMeta(4096, "test", events=len(events),
                              accesses=float(events["weight"].sum()), distinct_pages=distinct,
                              t_first_ns=int(events["t_ns"][0]),
                              t_last_ns=int(events["t_ns"][-1]), epoch_ns=natural)

    def chunks(self, n: int = 0):
        for piece in np.split(self.events, sorted(set(self.cuts))):
            if len(piece):
                yield piece


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=80),
       st.lists(st.integers(1, 79), max_size=6), st.integers(1, 9), st.booleans())
def test_streamed_wss_equals_brute_force(steps, cuts, epoch, snapshots) -> None:
    times = np.cumsum([dt for dt, _ in steps])
    pages = np.array([p for _, p in steps])
    pages = np.unique(pages, return_inverse=True)[1]  # dense, as a trace hands them
    events = np.zeros(len(steps), dtype=EVENT_DTYPE)
    events["t_ns"], events["page"], events["weight"] = times, pages, 1.0
    trace = ListTrace(events, [c for c in cuts if c < len(steps)], 5 if snapshots else None)
    data = trace_stats(trace, epoch_ns=SNAPSHOT if snapshots else epoch).as_dict()
    if snapshots:
        keys = times
        buckets = [set(pages[keys == k].tolist()) for k in np.unique(keys)]
    else:
        keys = (times - times[0]) // epoch
        buckets = [set(pages[keys == k].tolist()) for k in range(int(keys.max()) + 1)]
    sizes = np.array([len(b) * 4096 for b in buckets], dtype=float)
    assert data["epochs"] == len(sizes)
    assert data["wss_bytes"]["avg"] == pytest.approx(sizes.mean())
    assert data["wss_bytes"]["max"] == sizes.max()
    assert data["wss_bytes"]["p90"] == pytest.approx(np.percentile(sizes, 90))


def test_natural_epoch_is_per_snapshot() -> None:
    events = np.zeros(4, dtype=EVENT_DTYPE)
    events["t_ns"] = [0, 0, 7, 100]
    events["page"] = [0, 1, 0, 1]
    trace = ListTrace(events, [1, 3], natural=50)
    data = trace_stats(trace).as_dict()
    assert data["epoch"] == "snapshot" and data["epochs"] == 3
    assert data["wss_bytes"]["max"] == 8192 and data["wss_bytes"]["avg"] == pytest.approx(
        4 / 3 * 4096)
    trace.meta = dataclasses.replace(trace.meta, epoch_ns=None)
    assert trace_stats(trace).as_dict()["epoch"] == "1000000ns"
