"""``watermark``: kswapd-style demotion of the fast tier between a high and a low watermark.

When the fast tier's use passes its high watermark, kswapd wakes and
reclaims (demotes, on a tiered machine) from the tail of the inactive LRU
until use is back under the low watermark. Here the LRU is modelled by each
page's last access: the fast pages accessed longest ago are demoted first
(ties: fewer accesses first). The demotion runs in kswapd, a kernel thread:
asynchronous (``MR_DEMOTION``), it costs CPU time, not a stall.

The kernel derives its watermarks from ``watermark_scale_factor`` (0.1% of
the node by default); with demotion enabled memory tiering needs more room
for promotions, so the defaults here keep 1-3% of the fast tier free
(assumed; both are tunable). Works beside every promotion policy
(``placement.demotion=watermark``).
"""

from __future__ import annotations

import math

import numpy as np

from migpolicy.contract import (
    REQUEST_DTYPE,
    Epoch,
    KernelSetting,
    Parameter,
    PlacementPolicy,
    PlacementPolicyInfo,
    PlacementView,
    Reason,
    empty_requests,
    hookimpl,
)

from ._kernel import tier_nodes

ONLY = {"placement.demotion": ("watermark",)}

PARAMETERS = (
    Parameter("watermark.high", 0.99, "float", "fast-tier use (fraction of its capacity) "
              "that wakes kswapd to demote (assumed default)", low=0.5, high=1.0, when=ONLY),
    Parameter("watermark.low", 0.97, "float", "fast-tier use kswapd demotes down to "
              "(assumed default; below watermark.high)", low=0.3, high=1.0, when=ONLY),
)


class Watermark(PlacementPolicy):
    """Demote the least recently accessed fast pages when use passes the high watermark."""

    def __init__(self, params, hw, seed=0) -> None:
        super().__init__(params, hw, seed)
        self.high = float(params["watermark.high"])
        self.low = min(float(params["watermark.low"]), self.high)
        #: Per page: the last epoch that touched it (-1: none yet) and its halved-per-epoch
        #: access count, side by side (one cache line per page for :func:`remember`).
        self.recency: np.ndarray | None = None
        self.epoch: Epoch | None = None

    def observe(self, epoch: Epoch) -> None:
        self.epoch = epoch

    def propose(self, view: PlacementView) -> np.ndarray:
        if self.recency is None:
            self.recency = np.zeros((len(view.node_of), 2))
            self.recency[:, 0] = -1
        if self.epoch is not None:
            from ._placement_loops import remember

            remember(self.epoch.pages, self.epoch.accesses, self.epoch.index, self.recency)
        fast, slow = view.fast[0], view.slow[0]
        capacity, used = view.capacity[fast], view.used[fast]
        if capacity <= 0 or used <= self.high * capacity:
            return empty_requests()
        page_bytes = int(view.page_bytes[0])
        need = -(-(used - int(self.low * capacity)) // page_bytes)
        need = min(need, view.free(slow) // page_bytes)
        if need <= 0:  # the slow tier is full: nothing can go down (before a pass over pages)
            return empty_requests()
        on_fast = np.flatnonzero(view.node_of == fast)
        need = min(need, len(on_fast))
        if need <= 0:
            return empty_requests()
        out = np.zeros(need, dtype=REQUEST_DTYPE)
        last, count = self.recency[on_fast].T
        out["page"] = coldest(on_fast, last, count, need)
        out["dst"], out["reason"] = slow, Reason.DEMOTION
        return out


def coldest(pages: np.ndarray, last: np.ndarray, count: np.ndarray, need: int) -> np.ndarray:
    """The ``need`` pages accessed longest ago (ties: fewest accesses, then lowest page), sorted.

    ``pages`` ascend; ``last`` and ``count`` are theirs. The pages a full
    sort by (``last``, ``count``, page) would put first, found by partial
    selection in time linear in the pages: demotion runs over the whole fast
    tier, up to every epoch.
    """
    if need >= len(pages):
        return pages
    bound = np.partition(last, need - 1)[need - 1]
    older = np.flatnonzero(last < bound)
    tied = np.flatnonzero(last == bound)
    rest = need - len(older)
    if rest < len(tied):
        counts = count[tied]
        pivot = np.partition(counts, rest - 1)[rest - 1]
        if np.isnan(pivot):  # NaN counts sort last: take the full sort's order
            tied = tied[np.argsort(counts, kind="stable")[:rest]]
        else:
            fewer = tied[counts < pivot]
            tied = np.concatenate((fewer, tied[counts == pivot][: rest - len(fewer)]))
    return pages[np.sort(np.concatenate((older, tied)))]


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_placement_policies():
    return (PlacementPolicyInfo(
        name="watermark", summary="kswapd-style demotion of the least recently used fast "
        "pages between a high and a low watermark", factory=Watermark, role="demotion",
        parameters=PARAMETERS),)


#: vm.watermark_scale_factor's range (mm/page_alloc.c sysctl table: 1 to 3000).
SCALE_FACTOR_RANGE = (1, 3000)


def default_min_free_kbytes(total_bytes: int) -> int:
    """The kernel's default vm.min_free_kbytes (calculate_min_free_kbytes): int_sqrt(KiB x 16).

    Clamped to [128, 262144]; every byte of the profile's nodes counts as
    low memory (a node onlined as ZONE_MOVABLE would not).
    """
    return min(max(math.isqrt(total_bytes // 1024 * 16), 128), 262144)


def scale_factor(keep_free: float, node_bytes: int, min_bytes: float, steps: int) -> int:
    """vm.watermark_scale_factor that has kswapd stop at ``keep_free`` of the node free.

    __setup_per_zone_wmarks: low = min + gap, high = low + gap, promo = high + gap,
    gap = max(min / 4, managed x factor / 10000); kswapd reclaims up to high
    (``steps`` 2), or up to promo in NUMA-balancing tiering mode (``steps`` 3).
    """
    gap = (keep_free * node_bytes - min_bytes) / steps
    low, high = SCALE_FACTOR_RANGE
    return int(min(max(round(gap / node_bytes * 10000), low), high))


def _kernel_marks(factor: int, node_bytes: int, min_bytes: float, steps: int
                  ) -> tuple[float, float]:
    """Fast-tier use at which kswapd wakes and down to which it demotes, under ``factor``."""
    gap = max(min_bytes / 4, node_bytes * factor / 10000)
    return 1 - (min_bytes + gap) / node_bytes, 1 - (min_bytes + steps * gap) / node_bytes


@hookimpl
def migpolicy_kernel_settings(params, hw):
    demotion = params["placement.demotion"] == "watermark"
    out = [KernelSetting("sysfs", "/sys/kernel/mm/numa/demotion_enabled",
                         "true" if demotion else "false", ("placement.demotion",),
                         "kswapd demotes to the slow tier instead of reclaiming" if demotion
                         else "no demotion policy: kswapd reclaims (swaps or drops) instead")]
    if not demotion:
        return out
    fast, _ = tier_nodes(hw)
    node_bytes = int(fast["capacity"])
    total = sum(int(n["capacity"]) for n in hw.nodes.values())
    min_kb = default_min_free_kbytes(total)
    min_bytes = min_kb * 1024 * node_bytes / total  # the node's share of min_free_kbytes
    tiering = params["placement"] == "numab"
    steps = 3 if tiering else 2
    factor = scale_factor(1 - params["watermark.low"], node_bytes, min_bytes, steps)
    wake, stop = _kernel_marks(factor, node_bytes, min_bytes, steps)
    mark = "promo (tiering mode)" if tiering else "high"
    out += [
        KernelSetting("sysctl", "vm.min_free_kbytes", min_kb, ("watermark.low",),
                      f"the kernel's default for the profile's {_gib(total)} (int_sqrt(KiB x "
                      f"16)); set so that the watermark_scale_factor below holds; node "
                      f"{fast.id}'s share is {min_bytes / 2**20:.0f} MiB"),
        KernelSetting("sysctl", "vm.watermark_scale_factor", factor,
                      ("watermark.low", "watermark.high"),
                      f"watermark.low {params['watermark.low']:g} keeps "
                      f"{1 - params['watermark.low']:.2%} of node {fast.id} ({_gib(node_bytes)})"
                      f" free: kswapd balances to the {mark} watermark = min + {steps} x gap, "
                      f"gap = factor/10000 of the node, so factor = round((free - min) / "
                      f"{steps} / node x 10000); the kernel then wakes kswapd at {wake:.4f} "
                      f"use (watermark.high asks {params['watermark.high']:g}) and demotes "
                      f"down to {stop:.4f}; one factor sets both"),
    ]
    return out


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:g} GiB"
