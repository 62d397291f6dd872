"""``damos``: DAMON's adaptive regions with a promotion and a demotion scheme (mm/damon/).

What DAMON does, and how it is modelled (one replay epoch = one aggregation
interval):

* **Regions and sampling.** The address space is cut into regions; every
  sampling interval (``damos.sample_us``) one random page per region is
  checked for an access. ``nr_accesses`` counts the samples that found one.
  A page with ``a`` accesses in an epoch of ``S`` samples is found accessed
  by one sample with probability ``1 - exp(-a / S)``.
* **Merge and split** (``kdamond_merge_regions``, ``kdamond_split_regions``):
  after each aggregation neighbours whose ``nr_accesses`` differ by at most
  10% of the maximum merge (size-weighted); while there are fewer than half
  of ``damos.max_regions`` regions each is split in two at a random point.
  A region's age counts the aggregations its ``nr_accesses`` stayed about the
  same; a change resets it.
* **Schemes.** ``migrate_cold`` demotes the fast pages of regions with no
  access for ``damos.cold_min_age`` aggregations, coldest and oldest first;
  it is active (DAMOS watermarks on the fast tier's free memory rate) from
  the moment free memory drops under ``damos.free_low`` until it is back
  over ``damos.free_high``. ``migrate_hot`` promotes the slow pages of
  regions with ``nr_accesses`` of at least ``damos.hot_min_pct`` percent of
  the samples, hottest first. Each scheme has a quota in MB/s (DAMOS
  ``quotas.sz`` per ``quotas.reset_interval_ms``).
* **Overhead.** kdamond's access checks cost CPU (asynchronous):
  ``damos.check_ns`` per region per sample (assumed: clearing and reading the
  accessed bit through the reverse map, about 200 ns).

Regions cover the replay's page ids, which are in address order.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    REQUEST_DTYPE,
    Epoch,
    KernelSetting,
    NoKernelEquivalent,
    Parameter,
    PlacementPolicy,
    PlacementPolicyInfo,
    PlacementView,
    Reason,
    empty_requests,
    hookimpl,
)

from ._kernel import tier_nodes

ONLY = {"placement": ("damos",)}

PARAMETERS = (
    Parameter("damos.sample_us", 5000.0, "float", "DAMON sampling interval, us (damo "
              "default 5 ms)", low=1.0, high=1e6, log=True, when=ONLY),
    Parameter("damos.min_regions", 10, "int", "minimum number of regions (DAMON default 10)",
              low=1, high=10000, tunable=False, when=ONLY),
    Parameter("damos.max_regions", 1000, "int", "maximum number of regions (DAMON default "
              "1000)", low=3, high=100000, log=True, when=ONLY),
    Parameter("damos.hot_min_pct", 50.0, "float", "migrate_hot: least nr_accesses, percent "
              "of the samples per aggregation", low=1.0, high=100.0, when=ONLY),
    Parameter("damos.cold_min_age", 5, "int", "migrate_cold: aggregations without access "
              "before a region is demoted", low=0, high=1000, when=ONLY),
    Parameter("damos.quota_mbps", 1024.0, "float", "migrate_hot quota, MB/s", low=1.0,
              high=65536.0, log=True, when=ONLY),
    Parameter("damos.cold_quota_mbps", 4096.0, "float", "migrate_cold quota, MB/s", low=1.0,
              high=65536.0, log=True, when=ONLY),
    Parameter("damos.free_low", 0.02, "float", "migrate_cold starts when the fast tier's free "
              "fraction falls under this (watermark)", low=0.0, high=0.5, when=ONLY),
    Parameter("damos.free_high", 0.05, "float", "migrate_cold stops when the fast tier's free "
              "fraction is back over this (watermark)", low=0.0, high=0.9, when=ONLY),
    Parameter("damos.check_ns", 200.0, "float", "kdamond CPU per region access check, ns "
              "(assumed)", low=0.0, high=1e5, tunable=False, when=ONLY),
)

#: Samples per aggregation are capped (a long epoch samples like 100 intervals).
MAX_SAMPLES = 100


class Damos(PlacementPolicy):
    """DAMON regions with migrate_hot and migrate_cold schemes, quotas and watermarks."""

    def __init__(self, params, hw, seed=0) -> None:
        super().__init__(params, hw, seed)
        self.rng = np.random.default_rng(seed)
        self.sample_ns = params["damos.sample_us"] * 1e3
        self.min_regions = int(params["damos.min_regions"])
        self.max_regions = max(int(params["damos.max_regions"]), self.min_regions)
        self.hot_pct = float(params["damos.hot_min_pct"])
        self.cold_age = int(params["damos.cold_min_age"])
        self.hot_rate = params["damos.quota_mbps"] * 1e6 / 1e9  # bytes per ns
        self.cold_rate = params["damos.cold_quota_mbps"] * 1e6 / 1e9
        self.free_low = float(params["damos.free_low"])
        self.free_high = max(float(params["damos.free_high"]), self.free_low)
        self.check_s = params["damos.check_ns"] * 1e-9
        self.start = self.end = self.nr = self.age = None
        self.accesses: np.ndarray | None = None
        self.epoch: Epoch | None = None
        self.demoting = False
        self.hot_tokens = 0.0
        self._cpu = 0.0

    def observe(self, epoch: Epoch) -> None:
        self.epoch = epoch

    def _init_regions(self, pages: int) -> None:
        count = max(1, min(self.min_regions, pages))
        bounds = np.linspace(0, pages, count + 1).astype(np.int64)
        self.start, self.end = bounds[:-1], bounds[1:]
        self.nr = np.zeros(count)
        self.age = np.zeros(count)
        self.accesses = np.zeros(pages)

    def propose(self, view: PlacementView) -> np.ndarray:
        epoch = self.epoch
        if epoch is None or not len(view.node_of):
            return empty_requests()
        if self.start is None:
            self._init_regions(len(view.node_of))
        samples = int(np.clip(round(epoch.length_ns / self.sample_ns), 1, MAX_SAMPLES))
        self._aggregate(epoch, samples)
        page_bytes = int(view.page_bytes[0])
        fast, slow = view.fast[0], view.slow[0]
        cold = self._migrate_cold(view, epoch, fast, slow, page_bytes)
        freed = len(cold)
        hot = self._migrate_hot(view, epoch, samples, fast, page_bytes, freed)
        self._merge(samples)
        self._split()
        out = np.zeros(len(cold) + len(hot), dtype=REQUEST_DTYPE)
        out["page"] = np.concatenate((cold, hot))
        out["dst"][: len(cold)] = slow
        out["dst"][len(cold):] = fast
        out["reason"] = Reason.DAMON
        return out

    def _aggregate(self, epoch: Epoch, samples: int) -> None:
        """Sample every region ``samples`` times; update nr_accesses and age."""
        self.accesses[epoch.pages] = epoch.accesses
        picked = self.rng.integers(self.start[:, None], self.end[:, None],
                                   size=(len(self.start), samples))
        found = self.rng.random(picked.shape) < -np.expm1(-self.accesses[picked] / samples)
        self.accesses[epoch.pages] = 0.0
        nr = found.sum(axis=1).astype(np.float64)
        same = np.abs(nr - self.nr) <= max(1.0, samples / 10)
        self.age = np.where(same, self.age + 1, 0)
        self.nr = nr
        self._cpu += len(self.start) * samples * self.check_s

    def _pages_of(self, regions: np.ndarray, node_of: np.ndarray, node: int,
                  limit: int) -> np.ndarray:
        """Up to ``limit`` pages on ``node`` of ``regions``, in the order given."""
        out: list[np.ndarray] = []
        total = 0
        for r in regions:
            if total >= limit:
                break
            span = np.arange(self.start[r], self.end[r])
            mine = span[node_of[span] == node][: limit - total]
            out.append(mine)
            total += len(mine)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _migrate_cold(self, view: PlacementView, epoch: Epoch, fast: int, slow: int,
                      page_bytes: int) -> np.ndarray:
        capacity = view.capacity[fast]
        free = view.free(fast) / capacity if capacity else 1.0
        if free < self.free_low:
            self.demoting = True
        elif free >= self.free_high:
            self.demoting = False
        if not self.demoting:
            return np.zeros(0, dtype=np.int64)
        want = int(self.free_high * capacity) - view.free(fast)
        quota = int(self.cold_rate * epoch.length_ns)
        limit = min(-(-want // page_bytes), quota // page_bytes, view.free(slow) // page_bytes)
        eligible = np.flatnonzero((self.nr == 0) & (self.age >= self.cold_age))
        order = eligible[np.lexsort((-self.age[eligible], self.nr[eligible]))]
        return self._pages_of(order, view.node_of, fast, max(limit, 0))

    def _migrate_hot(self, view: PlacementView, epoch: Epoch, samples: int, fast: int,
                     page_bytes: int, freed: int) -> np.ndarray:
        self.hot_tokens = min(self.hot_tokens + self.hot_rate * epoch.length_ns,
                              self.hot_rate * epoch.length_ns + page_bytes)
        threshold = max(1.0, np.ceil(self.hot_pct / 100 * samples))
        eligible = np.flatnonzero(self.nr >= threshold)
        if not len(eligible):
            return np.zeros(0, dtype=np.int64)
        room = view.free(fast) // page_bytes + freed
        limit = min(int(self.hot_tokens // page_bytes), room)
        order = eligible[np.lexsort((-self.age[eligible], -self.nr[eligible]))]
        pages = self._pages_of(order, view.node_of, view.slow[0], max(limit, 0))
        self.hot_tokens -= len(pages) * page_bytes
        return pages

    def _merge(self, samples: int) -> None:
        """Merge neighbours whose nr_accesses differ by at most 10% of the samples."""
        if len(self.start) <= self.min_regions:
            return
        threshold = max(1.0, samples / 10)
        new = np.concatenate(([True], np.abs(np.diff(self.nr)) > threshold))
        if new.all():
            return
        heads = np.flatnonzero(new)
        if len(heads) < self.min_regions:
            return
        size = (self.end - self.start).astype(np.float64)
        total = np.add.reduceat(size, heads)
        self.nr = np.add.reduceat(self.nr * size, heads) / total
        self.age = np.add.reduceat(self.age * size, heads) / total
        ends = np.append(heads[1:], len(self.start)) - 1
        self.end = self.end[ends]
        self.start = self.start[heads]

    def _split(self) -> None:
        """Split every region of two or more pages in two while regions are few."""
        if len(self.start) >= self.max_regions // 2:
            return
        size = self.end - self.start
        cut = size >= 2
        if not cut.any():
            return
        point = self.start[cut] + self.rng.integers(1, size[cut])
        start = np.concatenate((self.start, point))
        end = np.concatenate((np.where(cut, 0, self.end), self.end[cut]))
        end[: len(self.start)][cut] = point
        order = np.argsort(start, kind="stable")
        self.start, self.end = start[order], end[order]
        self.nr = np.concatenate((self.nr, self.nr[cut]))[order]
        self.age = np.concatenate((self.age, self.age[cut]))[order]

    def overhead(self) -> tuple[float, float]:
        """No program stall; kdamond's CPU time since the last call."""
        cpu, self._cpu = self._cpu, 0.0
        return 0.0, cpu


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_placement_policies():
    return (PlacementPolicyInfo(
        name="damos", summary="DAMON adaptive regions with migrate_hot and migrate_cold "
        "schemes, quotas and watermarks", factory=Damos, parameters=PARAMETERS,
        rate_limit="damos.quota_mbps"),)


#: The aggregation interval of the DAMOS settings: damo's default (a policy file holds no epoch).
AGGR_US = 100_000
#: The quota's reset interval: the MB/s quotas become bytes per second.
QUOTA_RESET_MS = 1000


def free_mem_permil(free: float, fast_bytes: int, total_bytes: int) -> int:
    """The fast tier's free fraction as DAMOS's free_mem_rate, system-wide, in per-thousand.

    mm/damon/core.c measures free memory over all of RAM (free pages x 1000 /
    total); ``free`` of the fast node is ``free x fast / total`` of it while the
    slow node has no free memory.
    """
    return round(free * fast_bytes / total_bytes * 1000)


@hookimpl
def migpolicy_kernel_settings(params, hw):
    if params["placement"] != "damos":
        return None
    fast, slow = tier_nodes(hw)
    fast_bytes = int(fast["capacity"])
    total = sum(int(n["capacity"]) for n in hw.nodes.values())
    aggr_us = max(AGGR_US, round(params["damos.sample_us"]))
    low = free_mem_permil(params["damos.free_low"], fast_bytes, total)
    high = free_mem_permil(params["damos.free_high"], fast_bytes, total)
    free_note = (f"the fast tier's free fraction {{}} x node {fast.id} ({fast_bytes / 2**30:g} "
                 f"GiB) / all nodes ({total / 2**30:g} GiB) x 1000: free_mem_rate counts all "
                 "of RAM (mm/damon/core.c), so this holds while the slow tier is full")
    out = []
    schemes = (  # (kdamond, node monitored, action, target node, pattern, quota, watermarks)
        (0, fast, "migrate_cold", slow,
         ({"min": 0, "max": 0}, {"min": f"{params['damos.cold_min_age']} aggr_intervals",
                                 "max": "max aggr_intervals"}, ("damos.cold_min_age",)),
         ("damos.cold_quota_mbps", {"nr_accesses_permil": 1000, "age_permil": 1000}),
         ({"metric": "free_mem_rate", "interval_us": aggr_us, "high_permil": high,
           "mid_permil": low, "low_permil": 0}, ("damos.free_low", "damos.free_high"),
          "active from free_mem_rate under mid (damos.free_low) until over high "
          f"(damos.free_high); low 0: never off for want of memory; "
          f"mid: {free_note.format(params['damos.free_low'])}")),
        (1, slow, "migrate_hot", fast,
         ({"min": params["damos.hot_min_pct"], "max": 100},
          {"min": "0 aggr_intervals", "max": "max aggr_intervals"}, ("damos.hot_min_pct",)),
         ("damos.quota_mbps", {"nr_accesses_permil": 1000, "age_permil": 0}),
         ({"metric": "none", "interval_us": 0, "high_permil": 0, "mid_permil": 0,
           "low_permil": 0}, ("placement",), "always active, as in the model")),
    )
    for index, node, action, target, pattern, quota, marks in schemes:
        ctx = f"kdamonds/{index}/contexts/0"
        scheme = f"{ctx}/schemes/0"
        nr_accesses, age, pattern_from = pattern
        quota_param, weights = quota
        out += [
            KernelSetting("damo", f"{ctx}/ops", "paddr", ("placement",),
                          f"physical memory of node {node.id} ({node.name})"),
            KernelSetting("damo", f"{ctx}/targets", [{"pid": None, "regions": []}],
                          ("placement",),
                          f"fill regions with node {node.id}'s physical address range before "
                          f"damo start --kdamonds: damo args damon --numa_node {node.id} "
                          "prints it"),
            KernelSetting("damo", f"{ctx}/intervals/sample_us", round(params["damos.sample_us"]),
                          ("damos.sample_us",)),
            KernelSetting("damo", f"{ctx}/intervals/aggr_us", aggr_us, ("placement",),
                          "damo's default aggregation interval; the replay takes one epoch "
                          "as one aggregation: change it to the --epoch of the tuning"),
            KernelSetting("damo", f"{ctx}/intervals/ops_update_us", 1_000_000, ("placement",),
                          "damo's default"),
            KernelSetting("damo", f"{ctx}/nr_regions/min", params["damos.min_regions"],
                          ("damos.min_regions",)),
            KernelSetting("damo", f"{ctx}/nr_regions/max", params["damos.max_regions"],
                          ("damos.max_regions",)),
            KernelSetting("damo", f"{scheme}/action", action, ("placement",),
                          "demote cold regions of the fast tier" if action == "migrate_cold"
                          else "promote hot regions of the slow tier"),
            KernelSetting("damo", f"{scheme}/target_nid", target.id, ("placement",),
                          f"node {target.id} ({target.name})"),
            KernelSetting("damo", f"{scheme}/access_pattern",
                          {"sz_bytes": {"min": "min", "max": "max"},
                           "nr_accesses": nr_accesses, "age": age}, pattern_from,
                          "nr_accesses in percent of the samples per aggregation, age in "
                          "aggregation intervals"),
            KernelSetting("damo", f"{scheme}/apply_interval_us", 0, ("placement",),
                          "every aggregation interval"),
            KernelSetting("damo", f"{scheme}/quotas",
                          {"time_ms": 0,
                           "sz_bytes": round(params[quota_param] * 1e6),
                           "reset_interval_ms": QUOTA_RESET_MS, "goals": [],
                           "effective_sz_bytes": 0,
                           "weights": {"sz_permil": 0, **weights}},
                          (quota_param,),
                          f"{params[quota_param]:g} MB/s as bytes per {QUOTA_RESET_MS} ms "
                          "reset interval (MB = 10^6 bytes); over quota, the "
                          + ("coldest and oldest regions go first" if index == 0 else
                             "hottest regions go first")),
            KernelSetting("damo", f"{scheme}/watermarks", marks[0], marks[1], marks[2]),
            KernelSetting("damo", f"{scheme}/filters", [], ("placement",)),
        ]
    out.append(NoKernelEquivalent(("damos.check_ns",),
                                  "a cost in the model (assumed), not a kernel setting"))
    return out
