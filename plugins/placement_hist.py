"""``hist``: an access histogram with cooling; the hot threshold keeps the hot set in the fast tier.

In the manner of Memtis and HeMem: every page has a heat, its accesses with
exponential cooling (a half-life of ``hist.half_life_ms``). Pages are
binned by log2 of their heat; the hot threshold is the lowest bin edge whose
pages above it fit the fast tier (recomputed every ``hist.period_ms``). Hot
slow pages are promoted, hottest first; to make room, fast pages under the
threshold are demoted, coldest first. A kernel daemon does the moving
(``MR_DAMON``, asynchronous: CPU time, not a stall), at most
``hist.rate_limit_mbps`` of promotions per second.

Heat is stored scaled to a reference time (``heat x 2^(t / half_life)``), so
cooling costs nothing per epoch: only the pages an epoch touches are
updated, and ranking pages by the stored value ranks them by current heat.
The daemon's sampling is charged as CPU time per access counted
(``hist.sample_ns``, assumed).
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    REQUEST_DTYPE,
    Epoch,
    NoKernelEquivalent,
    Parameter,
    PlacementPolicy,
    PlacementPolicyInfo,
    PlacementView,
    Reason,
    empty_requests,
    hookimpl,
)

ONLY = {"placement": ("hist",)}

PARAMETERS = (
    Parameter("hist.half_life_ms", 100.0, "float", "cooling: a page's heat halves every "
              "this many ms without access", low=0.01, high=60000.0, log=True, when=ONLY),
    Parameter("hist.period_ms", 10.0, "float", "how often the hot threshold is recomputed "
              "from the histogram, ms", low=0.01, high=10000.0, log=True, when=ONLY),
    Parameter("hist.rate_limit_mbps", 4096.0, "float", "promotion rate limit, MB/s",
              low=1.0, high=65536.0, log=True, when=ONLY),
    Parameter("hist.hot_fill", 0.9, "float", "fraction of the fast tier the hot set may "
              "fill (the rest absorbs new pages)", low=0.1, high=1.0, when=ONLY),
    Parameter("hist.sample_ns", 2.0, "float", "daemon CPU per access counted, ns (assumed: "
              "PEBS-style sampling of one access in a few hundred at ~1 us per sample)",
              low=0.0, high=1000.0, tunable=False, when=ONLY),
)

#: Rescale stored heat once its reference exponent passes this (float64 stays finite).
_RESCALE = 512.0


class Histogram(PlacementPolicy):
    """Promote pages above a histogram-chosen threshold; demote fast pages below it."""

    def __init__(self, params, hw, seed=0) -> None:
        super().__init__(params, hw, seed)
        self.half_life_ns = params["hist.half_life_ms"] * 1e6
        self.period_ns = params["hist.period_ms"] * 1e6
        self.rate_bytes_per_ns = params["hist.rate_limit_mbps"] * 1e6 / 1e9
        self.fill = float(params["hist.hot_fill"])
        self.sample_s = params["hist.sample_ns"] * 1e-9
        self.heat: np.ndarray | None = None
        self.origin_ns = 0.0
        self.threshold = np.inf
        self.next_update = 0.0
        self.tokens = 0.0
        self.epoch: Epoch | None = None
        self._cpu = 0.0

    def observe(self, epoch: Epoch) -> None:
        self.epoch = epoch

    def _scaled(self, t_ns: float) -> float:
        return 2.0 ** ((t_ns - self.origin_ns) / self.half_life_ns)

    def propose(self, view: PlacementView) -> np.ndarray:
        epoch = self.epoch
        if epoch is None:
            return empty_requests()
        if self.heat is None:
            self.heat = np.zeros(len(view.node_of))
            self.origin_ns = float(epoch.start_ns)
        end = epoch.start_ns + epoch.length_ns
        if (end - self.origin_ns) / self.half_life_ns > _RESCALE:
            shrink = 2.0 ** (-(end - self.origin_ns) / self.half_life_ns)  # may underflow to 0
            self.heat *= shrink
            self.threshold *= shrink
            self.origin_ns = float(end)
        if len(epoch.pages):
            self.heat[epoch.pages] += epoch.accesses * self._scaled(end)
            self._cpu += float(epoch.accesses.sum()) * self.sample_s
        page_bytes = int(view.page_bytes[0])
        fast, slow = view.fast[0], view.slow[0]
        if end >= self.next_update:
            self._threshold(int(self.fill * view.capacity[fast]) // page_bytes)
            self.next_update = end + self.period_ns
        self.tokens = min(self.tokens + self.rate_bytes_per_ns * epoch.length_ns,
                          self.rate_bytes_per_ns * epoch.length_ns + page_bytes)
        touched = epoch.pages
        hot = touched[(self.heat[touched] >= self.threshold) & (view.node_of[touched] == slow)]
        budget = int(self.tokens // page_bytes)
        if not len(hot) or budget <= 0:
            return empty_requests()
        hot = hot[np.argsort(-self.heat[hot], kind="stable")][:budget]
        free = view.free(fast) // page_bytes
        demote = np.zeros(0, dtype=np.int64)
        if len(hot) > free:
            on_fast = np.flatnonzero(view.node_of == fast)
            cold = on_fast[self.heat[on_fast] < self.threshold]
            need = min(len(hot) - free, len(cold), view.free(slow) // page_bytes)
            if need > 0:
                demote = cold[np.argpartition(self.heat[cold], need - 1)[:need]]
            hot = hot[: free + len(demote)]
        self.tokens -= len(hot) * page_bytes
        out = np.zeros(len(demote) + len(hot), dtype=REQUEST_DTYPE)
        out["page"] = np.concatenate((demote, hot))
        out["dst"][: len(demote)] = slow
        out["dst"][len(demote):] = fast
        out["reason"] = Reason.DAMON
        return out

    def _threshold(self, hot_pages: int) -> None:
        """The lowest power-of-two heat whose pages above it fit ``hot_pages``."""
        heat = self.heat[self.heat > 0]
        if not len(heat) or hot_pages <= 0:
            self.threshold = np.inf
            return
        bins = np.floor(np.log2(heat)).astype(np.int64)
        low = int(bins.min())
        counts = np.bincount(bins - low)
        above = np.cumsum(counts[::-1])[::-1]  # pages with bin >= b
        fits = np.flatnonzero(above <= hot_pages)
        self.threshold = 2.0 ** (low + int(fits[0])) if len(fits) else 2.0 ** (
            low + len(counts))

    def overhead(self) -> tuple[float, float]:
        """No program stall; the daemon's sampling CPU since the last call."""
        cpu, self._cpu = self._cpu, 0.0
        return 0.0, cpu


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_placement_policies():
    return (PlacementPolicyInfo(
        name="hist", summary="access histogram with cooling; the hot threshold keeps the "
        "hot set within the fast tier", factory=Histogram, parameters=PARAMETERS,
        rate_limit="hist.rate_limit_mbps"),)


@hookimpl
def migpolicy_kernel_settings(params):
    if params["placement"] != "hist":
        return None
    return (NoKernelEquivalent(
        ("placement", *(p.name for p in PARAMETERS)),
        "hist models a promotion daemon driven by a histogram of sampled accesses; mainline "
        "Linux has none (NUMA balancing and DAMOS are the kernel's promotion mechanisms)"),)
