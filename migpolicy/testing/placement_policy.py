"""The placement-policy conformance suite: invariants every placement policy must keep.

A plugin gets the whole suite by subclassing :class:`PlacementPolicyConformance`
in a test module and overriding the one fixture ``placement_plugin``::

    import pytest
    from migpolicy.testing import PlacementPolicyConformance

    class TestMyPolicy(PlacementPolicyConformance):
        @pytest.fixture
        def placement_plugin(self):
            return "mypkg.mypolicy"

Every policy the plugin registers through ``migpolicy_placement_policies`` is
driven through a seeded synthetic workload (a skewed hot set that moves half
way through, on a fast node holding a quarter of the pages) exactly as a replay
drives it: observe, propose, apply, learn. The suite checks that it never
overfills a node, never moves a page to the node it is on or twice in one
epoch, keeps its promotion rate limit, survives requests that fail, and
proposes the same moves for the same seed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pluggy
import pytest

from migpolicy.folios import FAILED, MOVED
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import find_profile
from migpolicy.params import resolve
from migpolicy.placement import Epoch, Placement, PlacementPolicyInfo
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import declared_parameters, placement_policies

__all__ = ["PlacementPolicyConformance", "Workload", "drive"]

FAST, SLOW = 0, 1


@dataclass(frozen=True)
class Workload:
    """A synthetic access pattern: ``pages`` 4 KiB pages, the fast node holding ``fast_share``."""

    pages: int = 2048
    epochs: int = 24
    epoch_ns: int = 10_000_000
    accesses_per_epoch: int = 20_000
    fast_share: float = 0.25
    page_bytes: int = 4096

    def placement(self) -> Placement:
        """Every page on the slow node; the fast node empty with room for ``fast_share``."""
        capacity = {FAST: int(self.pages * self.fast_share) * self.page_bytes,
                    SLOW: self.pages * self.page_bytes}
        return Placement(node_of=np.full(self.pages, SLOW, dtype=np.int16),
                         page_bytes=np.full(self.pages, self.page_bytes, dtype=np.int64),
                         capacity=capacity)

    def epochs_of(self, seed: int) -> Iterator[Epoch]:
        """Zipf-like accesses over a hot set that moves to other pages half way through."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(self.pages)
        for index in range(self.epochs):
            if index == self.epochs // 2:
                order = np.roll(order, self.pages // 2)
            ranks = np.minimum(rng.zipf(1.3, self.accesses_per_epoch), self.pages) - 1
            touched = order[ranks]
            writes = rng.random(self.accesses_per_epoch) < 0.3
            pages, inverse = np.unique(touched, return_inverse=True)
            yield Epoch(index=index, start_ns=index * self.epoch_ns, length_ns=self.epoch_ns,
                        pages=pages,
                        accesses=np.bincount(inverse).astype(np.float64),
                        writes=np.bincount(inverse, weights=writes).astype(np.float64))


def drive(info: PlacementPolicyInfo, params: dict[str, Any], hw: Profile, *,
          seed: int = 0, workload: Workload = Workload(),
          fail_every: int = 0) -> list[np.ndarray]:
    """Run one policy through ``workload`` as a replay would; return its requests per epoch.

    Raises :class:`~migpolicy.errors.PluginError` at the first request that breaks
    an invariant (checked by :meth:`Placement.apply`). With ``fail_every`` = k,
    every k-th request fails (as a pinned folio would) and is put back.
    """
    policy = info.factory(params, hw, seed)
    placement = workload.placement()
    out = []
    for epoch in workload.epochs_of(seed):
        policy.observe(epoch)
        view = placement.view((FAST,), (SLOW,), workload.epoch_ns, hw)
        requests = policy.propose(view)
        previous = placement.apply(requests, f"placement policy {info.name!r}")
        status = np.full(len(requests), MOVED, dtype=np.uint8)
        if fail_every:
            status[fail_every - 1::fail_every] = FAILED
        status = placement.revert(requests, previous, status)
        policy.learn(requests, status)
        out.append(requests.copy())
    return out


class PlacementPolicyConformance:
    """Inherit and override ``placement_plugin`` (a module name) to run the suite."""

    @pytest.fixture
    def placement_plugin(self) -> str:
        raise NotImplementedError("override the placement_plugin fixture with a module name")

    @pytest.fixture
    def under_test(self, placement_plugin: str) -> tuple[pluggy.PluginManager, ModuleType]:
        module = importlib.import_module(placement_plugin)
        pm = get_plugin_manager([placement_plugin], entry_points=False)
        return pm, module

    @pytest.fixture
    def hw(self, under_test) -> Profile:
        return find_profile(under_test[0], None)

    def policies(self, under_test) -> list[PlacementPolicyInfo]:
        pm, module = under_test
        mine = [impl for impl in pm.hook.migpolicy_placement_policies.get_hookimpls()
                if impl.plugin is module]
        assert mine, f"{module.__name__} registers no placement policy"
        names = {info.name for impl in mine for info in impl.function()}
        return [info for name, info in placement_policies(pm).items() if name in names]

    def params(self, pm: pluggy.PluginManager, info: PlacementPolicyInfo) -> dict[str, Any]:
        key = "placement" if info.role == "promotion" else "placement.demotion"
        return resolve(declared_parameters(pm), {key: info.name})

    def test_keeps_every_invariant(self, under_test, hw: Profile) -> None:
        for info in self.policies(under_test):
            drive(info, self.params(under_test[0], info), hw)

    def test_survives_failed_requests(self, under_test, hw: Profile) -> None:
        for info in self.policies(under_test):
            drive(info, self.params(under_test[0], info), hw, fail_every=3)

    def test_deterministic_for_a_seed(self, under_test, hw: Profile) -> None:
        for info in self.policies(under_test):
            params = self.params(under_test[0], info)
            first = drive(info, params, hw, seed=7)
            again = drive(info, params, hw, seed=7)
            assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)), (
                f"placement policy {info.name!r} proposes different moves for one seed")

    def test_keeps_its_rate_limit(self, under_test, hw: Profile) -> None:
        workload = Workload()
        for info in self.policies(under_test):
            if not info.rate_limit:
                continue
            params = self.params(under_test[0], info)
            limit = float(params[info.rate_limit]) * 1e6 * workload.epoch_ns / 1e9
            for index, requests in enumerate(drive(info, params, hw, workload=workload)):
                promoted = int((requests["dst"] == FAST).sum()) * workload.page_bytes
                assert promoted <= limit + workload.page_bytes, (
                    f"placement policy {info.name!r} promoted {promoted} bytes in epoch "
                    f"{index}, past its {info.rate_limit} of {params[info.rate_limit]} MB/s")
