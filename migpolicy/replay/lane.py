"""One policy set replayed over the epochs: placement, policies, windowed pricing, app time.

Every epoch the accesses are charged at the latency of the node each page is
on; then each policy observes the epoch and proposes requests, which are
applied to the placement at once (optimistically: the policy does not wait for
pricing). The requests of many epochs are priced in one pipeline call per
window and per kind (synchronous and asynchronous migrations separately);
requests that failed are put back and every policy learns what moved.

Application time = access time + synchronous migration wall time (the
faulting task migrates: NUMA-balancing promotion) + the policies' own stall
(hint faults, scanning) + contention: the CPU time of asynchronous migrations
and of policy daemons, times ``system.load`` (with idle CPUs a kernel thread
runs beside the program for free; with every CPU busy each second of it is
taken from the program).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from migpolicy.context import Context
from migpolicy.costs import CostTotals
from migpolicy.folios import ASYNC_REASONS, FAILED, FOLIO_DTYPE, REQUEST_DTYPE
from migpolicy.placement import Epoch, Placement, PlacementPolicy
from migpolicy.replay import kernels
from migpolicy.replay.tiers import Tiers
from migpolicy.replay.timeline import Timeline

__all__ = ["Lane", "access_cost"]

_ASYNC = np.asarray(sorted(int(r) for r in ASYNC_REASONS), dtype=np.uint8)


def access_cost(epoch: Epoch, node_of: np.ndarray, tiers: Tiers) -> tuple[float, float]:
    """Access time (s) of ``epoch`` with pages on ``node_of``, and its fast-tier hits.

    Every page is on the fast or the slow tier (a replay's placement knows no
    other node).
    """
    if len(epoch.pages) == 0:
        return 0.0, 0.0
    fast, slow = tiers.fast, tiers.slow
    return kernels.access_cost(
        epoch.pages, epoch.accesses, epoch.writes, node_of, fast, tiers.load_s[fast],
        tiers.store_s[fast], tiers.load_s[slow], tiers.store_s[slow])


@dataclass
class _Totals:
    stages: dict[str, CostTotals] = field(default_factory=dict)
    engines: dict[str, CostTotals] = field(default_factory=dict)
    tenants: dict[int, CostTotals] = field(default_factory=dict)

    def add(self, report) -> None:
        for name, totals in report.stages.items():
            self.stages[name] = self.stages.get(name, CostTotals()) + totals
        for name, totals in report.engines.items():
            self.engines[name] = self.engines.get(name, CostTotals()) + totals
        for tenant, rows in report.epochs.tenants.items():
            self.tenants[tenant] = self.tenants.get(tenant, CostTotals()) + CostTotals.of(rows)


class Lane:
    """The state of one policy set during a replay."""

    def __init__(self, context: Context, tiers: Tiers, placement: Placement,
                 tenant_of: np.ndarray, *, seed: int = 0, window_epochs: int = 1024,
                 window_folios: int = 1 << 16, timeline: Timeline | None = None) -> None:
        self.context, self.tiers, self.placement = context, tiers, placement
        self.tenant_of = tenant_of
        self.policies: list[PlacementPolicy] = context.placement_policies(seed)
        names = [context.params["placement"], context.params["placement.demotion"]]
        self.who = [f"placement policy {name!r}" for name in names[: len(self.policies)]]
        self.window_epochs, self.window_folios = window_epochs, window_folios
        self.load = float(context.params.get("system.load", 0.0))
        self.timeline = timeline or Timeline()
        self._buffer: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._epochs_in_window = 0
        self.access_s = self.fast_hits = 0.0
        self.stall_s = self.async_cpu_s = 0.0
        self.policy_stall_s = self.policy_cpu_s = 0.0
        self.promoted = self.demoted = self.failed = 0
        self.migrated_bytes = 0
        self.totals = _Totals()

    def step(self, epoch: Epoch, accesses: float) -> None:
        """Charge the epoch's ``accesses`` (their sum), then let every policy act at its end."""
        seconds, hits = access_cost(epoch, self.placement.node_of, self.tiers)
        self.access_s += seconds
        self.fast_hits += hits
        self.timeline.add(epoch.index, access_s=seconds, hits=hits,
                          accesses=accesses)
        for policy in self.policies:
            policy.observe(epoch)
        for index, policy in enumerate(self.policies):
            view = self.placement.view((self.tiers.fast,), (self.tiers.slow,), epoch.length_ns,
                                       self.context.hw)
            requests = policy.propose(view)
            previous = self.placement.apply(requests, self.who[index])
            if len(requests):
                self._buffer.append((index, epoch.index, requests, previous))
                self._buffered += len(requests)
                promoted = int((requests["dst"] == self.tiers.fast).sum())
                self.timeline.add(epoch.index, promoted=promoted,
                                  demoted=len(requests) - promoted)
            self._charge_overhead(policy, epoch.index)
        self._epochs_in_window += 1
        if self._buffered >= self.window_folios or self._epochs_in_window >= self.window_epochs:
            self.flush()

    def _charge_overhead(self, policy: PlacementPolicy, epoch: int) -> None:
        overhead = getattr(policy, "overhead", None)
        if overhead is None:
            return
        stall, cpu = overhead()
        self.policy_stall_s += stall
        self.policy_cpu_s += cpu
        if stall or cpu:
            self.timeline.add(epoch, overhead_s=stall + cpu * self.load)

    def flush(self) -> None:
        """Price the buffered requests, put back the ones that failed, let policies learn."""
        self._epochs_in_window = 0
        if not self._buffer:
            return
        owner = np.concatenate([np.full(len(r), i, np.int8) for i, _, r, _ in self._buffer])
        requests = np.concatenate([r for _, _, r, _ in self._buffer])
        previous = np.concatenate([p for _, _, _, p in self._buffer])
        epochs = np.concatenate([np.full(len(r), e, np.int64) for _, e, r, _ in self._buffer])
        self._buffer, self._buffered = [], 0
        folios = np.zeros(len(requests), dtype=FOLIO_DTYPE)
        folios["size"] = self.placement.page_bytes[requests["page"]]
        folios["page"] = requests["page"]
        folios["epoch"] = epochs
        folios["src"] = previous
        folios["dst"] = requests["dst"]
        folios["mapcount"] = 1
        folios["tenant"] = self.tenant_of[requests["page"]]
        folios["reason"] = requests["reason"]
        status = np.zeros(len(requests), dtype=np.uint8)
        is_async = np.isin(requests["reason"], _ASYNC)
        for asynchronous in (False, True):
            mask = is_async == asynchronous
            if not mask.any():
                continue
            report = self.context.price(folios[mask])
            status[mask] = report.results["status"]
            self.totals.add(report)
            cpu = sum(s.cpu_s for s in report.stages.values())
            if asynchronous:
                self.async_cpu_s += cpu
                waits = sum(rows["cpu_s"] for rows in report.epochs.stages.values()) * self.load
            else:
                self.stall_s += report.total_s
                waits = report.epochs.wall_s
            for epoch, seconds in zip(report.epochs.ids, waits, strict=True):
                self.timeline.add(int(epoch), migration_s=float(seconds))
        if (status == FAILED).any():
            self._revert(requests, previous, status)
        failed = status == FAILED
        self.failed += int(failed.sum())
        moved = ~failed
        self.migrated_bytes += int(folios["size"][moved].sum())
        to_fast = requests["dst"] == self.tiers.fast
        self.promoted += int((to_fast & moved).sum())
        self.demoted += int((~to_fast & moved).sum())
        for index, policy in enumerate(self.policies):
            mine = owner == index
            policy.learn(requests[mine], status[mine])

    def _revert(self, requests: np.ndarray, previous: np.ndarray, status: np.ndarray) -> None:
        """Put every page whose last request in the window failed back where it really is.

        That is the destination of its last request that moved, or where it
        was before its first request of the window. A failed demotion
        may have made room that later promotions used: the latest of those
        are undone (``status`` set to :data:`FAILED`) until every node is
        within its capacity again, as they would have failed for lack of room.
        """
        pages = requests["page"]
        n = len(pages)
        order = np.lexsort((np.arange(n), pages))  # by page, then in request order
        grouped = pages[order]
        first = np.concatenate(([True], grouped[1:] != grouped[:-1]))
        end = np.append(np.flatnonzero(first)[1:], n) - 1
        start = np.flatnonzero(first)
        ok = np.where(status[order] != FAILED, np.arange(n), -1)
        last_ok = np.maximum.accumulate(ok)[end]
        broken = status[order[end]] == FAILED
        # where the page really is: the last request that moved it, else where it started
        truth = np.where(last_ok >= start, requests["dst"][order[np.maximum(last_ok, 0)]],
                         previous[order[start]])[broken]
        moved = pages[order[end]][broken]
        here = self.placement.node_of[moved]
        self._move_back(moved, here, truth)
        last = np.zeros(n, dtype=bool)
        last[order[end]] = True
        placement = self.placement
        for node, capacity in placement.capacity.items():
            over = placement.used[node] - capacity
            if over <= 0:
                continue
            into = np.flatnonzero(last & (status != FAILED) & (requests["dst"] == node))[::-1]
            size = placement.page_bytes[pages[into]]
            count = int(np.searchsorted(np.cumsum(size), over)) + 1
            victims = into[:count]
            status[victims] = FAILED
            self._move_back(pages[victims], requests["dst"][victims], previous[victims])

    def _move_back(self, pages: np.ndarray, here: np.ndarray, there: np.ndarray) -> None:
        """Move ``pages`` from ``here`` to ``there`` (where they differ), bypassing checks."""
        differ = here != there
        undo = np.zeros(int(differ.sum()), dtype=REQUEST_DTYPE)
        undo["page"], undo["dst"] = pages[differ], here[differ]
        self.placement.revert(undo, there[differ], np.full(len(undo), FAILED, np.uint8))

    @property
    def contention_s(self) -> float:
        """Program time lost to asynchronous migrations and policy daemons on busy CPUs."""
        return (self.async_cpu_s + self.policy_cpu_s) * self.load

    @property
    def migration_cpu_s(self) -> float:
        """CPU time of every migration priced so far, all stages."""
        return sum(s.cpu_s for s in self.totals.stages.values())

    @property
    def app_time_s(self) -> float:
        """Accesses + synchronous stalls + policy stalls + contention."""
        return self.access_s + self.stall_s + self.policy_stall_s + self.contention_s

