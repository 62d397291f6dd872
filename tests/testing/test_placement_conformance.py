"""The placement-policy conformance suite on ``none``, and on broken policies it must catch."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.contract import (
    REQUEST_DTYPE,
    Parameter,
    PlacementPolicy,
    PlacementPolicyInfo,
    PluginError,
    Reason,
)
from migpolicy.hardware.registry import find_profile
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.testing import PlacementPolicyConformance, Workload, drive


class TestNone(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_none"


def test_none_never_moves_a_page():
    hw = find_profile(get_plugin_manager(entry_points=False), None)
    info = PlacementPolicyInfo("none", "baseline", PlacementPolicy)
    assert all(len(r) == 0 for r in drive(info, {}, hw))


class _Hottest(PlacementPolicy):
    """Promotes the ``count`` most accessed slow pages of each epoch, ignoring free space."""

    count = 10_000
    rng_from_clock = False
    within_capacity = False

    def observe(self, epoch):
        self.epoch = epoch

    def propose(self, view):
        slow = view.node_of[self.epoch.pages] == 1
        count = self.count
        if self.within_capacity:
            count = min(count, view.free(0) // 4096)
        pages = self.epoch.pages[slow][np.argsort(-self.epoch.accesses[slow],
                                                  kind="stable")][:count]
        if self.rng_from_clock:
            pages = np.random.default_rng().permutation(pages)[: max(1, len(pages) // 2)]
        out = np.zeros(len(pages), dtype=REQUEST_DTYPE)
        out["page"], out["dst"], out["reason"] = pages, 0, Reason.NUMA_MISPLACED
        return out


class _ToItsOwnNode(_Hottest):
    def propose(self, view):
        out = super().propose(view)
        out["dst"] = view.node_of[out["page"]]
        return out


class _Twice(_Hottest):
    def propose(self, view):
        out = super().propose(view)[:5]
        return np.concatenate((out, out))


class _Unseeded(_Hottest):
    count = 50
    rng_from_clock = True
    within_capacity = True


@pytest.fixture
def hw():
    return find_profile(get_plugin_manager(entry_points=False), None)


@pytest.mark.parametrize(("policy", "message"), [
    (_Hottest, "past its capacity"),
    (_ToItsOwnNode, "where it already is"),
    (_Twice, "same page twice"),
])
def test_the_suite_catches_a_broken_policy(hw, policy, message):
    info = PlacementPolicyInfo("broken", "breaks an invariant", policy)
    with pytest.raises(PluginError, match=message):
        drive(info, {}, hw)


def test_the_suite_catches_a_policy_that_ignores_its_seed(hw):
    info = PlacementPolicyInfo("unseeded", "random without the seed", _Unseeded)
    first, again = drive(info, {}, hw, seed=3), drive(info, {}, hw, seed=3)
    assert not all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


class _OverRate(_Hottest):
    count = 100  # 100 pages of 4 KiB per 10 ms epoch: 40.96 MB/s
    within_capacity = True


def test_the_suite_catches_a_broken_rate_limit(hw, monkeypatch):
    """The rate check of the suite fails a policy promoting 41 MB/s under a 10 MB/s limit."""
    info = PlacementPolicyInfo("fast", "too fast", _OverRate, rate_limit="rate.mbps",
                               parameters=(Parameter("rate.mbps", 10.0, "float", "limit"),))
    suite = PlacementPolicyConformance()
    monkeypatch.setattr(suite, "policies", lambda under_test: [info])
    monkeypatch.setattr(suite, "params", lambda pm, info: {"rate.mbps": 10.0})
    workload = Workload()
    assert workload.epoch_ns == 10_000_000
    with pytest.raises(AssertionError, match=r"past its rate\.mbps"):
        suite.test_keeps_its_rate_limit((None, None), hw)
