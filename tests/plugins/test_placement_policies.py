"""The placement conformance suite on every built-in replay policy, and what each one models."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.contract import Epoch, Reason
from migpolicy.hardware.registry import find_profile
from migpolicy.params import resolve
from migpolicy.placement import Placement
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import declared_parameters, placement_policies
from migpolicy.testing import PlacementPolicyConformance, drive


class TestNumab(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_numab"


class TestHist(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_hist"


class TestDamos(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_damos"


class TestWatermark(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_watermark"


# -- what each policy models, on hand-made epochs ------------------------------------------------

FAST, SLOW = 0, 1


def _params(pm, **given):
    return resolve(declared_parameters(pm), given)


def _epoch(index, pages, accesses, length_ns=10_000_000):
    pages = np.asarray(pages, dtype=np.int64)
    return Epoch(index=index, start_ns=index * length_ns, length_ns=length_ns, pages=pages,
                 accesses=np.asarray(accesses, dtype=np.float64),
                 writes=np.zeros(len(pages)))


def _placement(pages, fast_pages, on_fast=()):
    node_of = np.full(pages, SLOW, dtype=np.int16)
    node_of[list(on_fast)] = FAST
    return Placement(node_of=node_of, page_bytes=np.full(pages, 4096, dtype=np.int64),
                     capacity={FAST: fast_pages * 4096, SLOW: pages * 4096})


@pytest.fixture
def pm():
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def hw(pm):
    return find_profile(pm, "dram-cxl")


def test_numab_promotes_a_scanned_page_on_its_next_access(pm, hw):
    """Scan 4 pages per 10 ms epoch (1.6384 MB/s of 4 KiB pages); a page faults on its next
    access after the scan and, under the 1 s threshold, is promoted in that epoch."""
    params = _params(pm, placement="numab", **{"numab.scan_size_mb": 1.5625,
                                              "numab.scan_period_ms": 1000.0})
    info = placement_policies(pm)["numab"]
    policy = info.factory(params, hw, 0)
    placement = _placement(8, 4)
    policy.observe(_epoch(0, [0, 1, 2, 3], [5, 5, 5, 5]))
    first = policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw))
    assert len(first) == 0  # nothing was scanned before this epoch
    policy.observe(_epoch(1, [0, 2, 5], [5, 1, 9]))
    second = policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw))
    assert sorted(second["page"]) == [0, 2]  # scanned (0..3) and accessed; 5 was not scanned
    assert set(second["dst"]) == {FAST} and set(second["reason"]) == {Reason.NUMA_MISPLACED}
    stall, cpu = policy.overhead()
    assert stall == pytest.approx(8 * 10e-9 + 2 * 1000e-9)  # 8 PTEs marked, 2 hint faults
    assert cpu == 0


def test_numab_keeps_a_low_rate_limit(pm, hw):
    """At 1 MB/s a 10 ms epoch may promote 10,000 bytes: two 4 KiB pages (plus the carry of
    less than one page the conformance suite allows)."""
    params = _params(pm, placement="numab", **{"numab.rate_limit_mbps": 1.0,
                                              "numab.scan_size_mb": 4096.0})
    info = placement_policies(pm)["numab"]
    requests = drive(info, params, hw)
    promoted = [int((r["dst"] == 0).sum()) for r in requests]
    assert max(promoted) <= 3 and sum(promoted) > 0


def test_numab_threshold_follows_the_kernel_steps(pm, hw):
    """numa_promotion_adjust_threshold: default 1000 ms, steps of 2/16 of it (125 ms). The
    first period has no candidate (nothing was scanned yet, under 90% of the rate limit): one
    step up; then 2048 candidates per period, past 110% of 1 MB/s: one step down each."""
    params = _params(pm, placement="numab", **{"numab.rate_limit_mbps": 1.0,
                                              "numab.adjust_period_ms": 10.0,
                                              "numab.scan_size_mb": 4096.0})
    policy = placement_policies(pm)["numab"].factory(params, hw, 0)
    placement = _placement(2048, 2048)
    thresholds = []
    for index in range(4):
        policy.observe(_epoch(index, np.arange(2048), np.ones(2048)))
        placement.apply(policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw)))
        thresholds.append(policy.threshold_ns / 1e6)
    assert thresholds == [1125.0, 1000.0, 875.0, 750.0]


def test_watermark_demotes_the_least_recently_used_down_to_low(pm, hw):
    params = _params(pm, **{"placement.demotion": "watermark", "watermark.high": 0.9,
                            "watermark.low": 0.5})
    policy = placement_policies(pm)["watermark"].factory(params, hw, 0)
    placement = _placement(20, 10, on_fast=range(10))
    for index, pages in enumerate(([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [5, 6, 7, 8, 9], [9])):
        policy.observe(_epoch(index, pages, np.ones(len(pages))))
        requests = policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw))
        placement.apply(requests)
    # 10 of 10 pages used > 90%: down to 5 pages, the ones untouched since epoch 0 go
    assert sorted(placement.node_of[:10].nonzero()[0]) == [0, 1, 2, 3, 4]
    assert placement.used[FAST] == 5 * 4096


def test_hist_threshold_keeps_the_hot_set_within_the_fast_tier(pm, hw):
    """Heat 8, 8, 4, 4, 1 ... with room for 3 hot pages (hot_fill 1): the hottest power of two
    whose pages above it fit is 8, so only the two pages of heat 8 are promoted."""
    params = _params(pm, placement="hist", **{"hist.hot_fill": 1.0})
    policy = placement_policies(pm)["hist"].factory(params, hw, 0)
    placement = _placement(8, 3)
    policy.observe(_epoch(0, [0, 1, 2, 3, 4, 5], [8, 8, 4, 4, 1, 1]))
    requests = policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw))
    assert sorted(requests["page"]) == [0, 1]
    assert set(requests["dst"]) == {FAST}


def test_damos_regions_follow_the_access_pattern(pm, hw):
    """A hot range of pages sampled often enough becomes hot regions: migrate_hot promotes
    pages of the hot range only, within its quota."""
    params = _params(pm, placement="damos", **{"damos.sample_us": 1000.0})
    policy = placement_policies(pm)["damos"].factory(params, hw, 0)
    placement = _placement(1000, 500)
    hot = np.arange(200, 300)
    promoted = []
    for index in range(12):
        policy.observe(_epoch(index, hot, np.full(len(hot), 100.0)))
        requests = policy.propose(placement.view((FAST,), (SLOW,), 10_000_000, hw))
        placement.apply(requests)
        promoted.extend(requests["page"][requests["dst"] == FAST])
    assert promoted and set(promoted) <= set(hot.tolist())
    assert len(policy.start) >= 10 and np.all(policy.end > policy.start)
    assert policy.start[0] == 0 and policy.end[-1] == 1000
    assert np.array_equal(policy.start[1:], policy.end[:-1])  # regions tile the pages
