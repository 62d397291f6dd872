"""Invariants of any replay, on random traces and fast-tier sizes (hypothesis).

* every page lives on exactly one node and no node exceeds its capacity;
* pages are conserved: the nodes together hold the footprint;
* a policy that never migrates costs exactly the access time of the initial
  placement (computed here from the events, independently of the replay);
* no policy's hit ratio exceeds the per-epoch oracle's, nor its access time
  goes under the oracle's.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy.context import build_context
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions, replay_many
from migpolicy.traces.events import EVENT_DTYPE, OP_READ, OP_WRITE, TraceMeta

PM = get_plugin_manager(entry_points=False)
POLICIES = [("none", "none"), ("numab", "watermark"), ("hist", "none"), ("damos", "watermark"),
            ("none", "watermark")]
CONTEXTS = [build_context(pm=PM, hw="dram-cxl", params={
    "placement": p, "placement.demotion": d, "numab.scan_size_mb": 4096.0,
    "numab.hot_threshold_ms": 5.0, "hist.half_life_ms": 1.0, "damos.sample_us": 100.0})
    for p, d in POLICIES]


class ArrayTrace:
    """A trace held in memory: the same interface replay reads from a file."""

    def __init__(self, events: np.ndarray, numbers: np.ndarray) -> None:
        self.events, self.page_numbers = events, numbers
        self.name = "random trace"
        self.meta = TraceMeta(page_size=4096, source_format="test", events=len(events),
                              accesses=float(events["weight"].sum()),
                              distinct_pages=len(numbers))

    def chunks(self, n: int = 1 << 20):
        for start in range(0, len(self.events), n):
            yield self.events[start:start + n]


@st.composite
def traces(draw):
    pages = draw(st.integers(2, 300))
    n = draw(st.integers(1, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # dense pages in first-touch order: every page once, in order, then random ones
    touched = np.concatenate((np.arange(pages), rng.integers(0, pages, n)))
    events = np.zeros(len(touched), dtype=EVENT_DTYPE)
    gaps = rng.choice([10, 1000, 200_000], size=len(touched), p=[0.6, 0.38, 0.02])
    events["t_ns"] = np.cumsum(gaps)
    events["page"] = touched
    events["op"] = np.where(rng.random(len(touched)) < 0.3, OP_WRITE, OP_READ)
    events["weight"] = rng.choice([1.0, 0.5, 3.0], size=len(touched))
    numbers = rng.permutation(pages * 4)[:pages]  # sparse addresses, in any order
    return ArrayTrace(events, numbers.astype(np.int64))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces(), fast=st.floats(0.05, 1.5), epoch=st.sampled_from([5_000, 50_000, 500_000]),
       window=st.sampled_from([1, 3, 1024]))
def test_every_replay_keeps_the_invariants(trace, fast, epoch, window):
    results = replay_many(trace, CONTEXTS, ReplayOptions(
        fast=fast, epoch_ns=epoch, window_epochs=window))
    pages = trace.meta.distinct_pages
    fast_pages = int(pages * 4096 * fast) // 4096
    for result in results:
        placement = result.placement
        assert len(placement.node_of) == pages
        assert set(np.unique(placement.node_of)) <= {0, 1}
        held = np.bincount(placement.node_of, minlength=2) * 4096
        assert held.sum() == pages * 4096
        assert held[0] == placement.used[0] <= placement.capacity[0] == fast_pages * 4096
        assert held[1] == placement.used[1] <= placement.capacity[1]
        bound = result["bound"]
        assert result["fast_hit_ratio"] <= bound["oracle_hit_ratio"] + 1e-9
        assert result["app"]["access_s"] >= bound["oracle_access_s"] * (1 - 1e-9)
        assert bound["static_hit_ratio"] <= bound["oracle_hit_ratio"] + 1e-9
    # never migrating: the first fast_pages pages touched are in DRAM (100 ns), the rest
    # in CXL (250 ns); the trace touches pages in dense order first
    events = trace.events
    latency = np.where(events["page"] < fast_pages, 100e-9, 250e-9)
    expected = float((events["weight"] * latency).sum())
    none = results[0]
    assert none.app_time_s == np.float64(expected) or abs(none.app_time_s - expected) <= (
        1e-9 * expected)
    assert none["promoted_pages"] == none["demoted_pages"] == 0
