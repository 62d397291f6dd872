"""``numab``: Linux NUMA-balancing memory tiering (``numa_balancing=2``), modelled per epoch.

What the kernel does (kernel/sched/fair.c, mm/memory.c), and how it is modelled:

* **Scanning.** ``task_numa_work`` walks the task's address space
  ``numa_balancing_scan_size_mb`` (256 MB) every scan period (at least
  ``scan_period_min_ms``, 1000 ms), making the PTEs inaccessible and
  stamping each page with the scan time. In tiering mode pages on the top
  tier are walked but not marked. Here a cursor walks the replay's pages in
  address order at ``scan_size_mb`` per ``scan_period_ms`` and stamps the
  slow-tier pages it passes with their scan time within the epoch.
* **Hint faults.** The next access to a marked page faults; the fault's
  latency is the time since the scan (``numa_hint_fault_latency``). With
  ``a`` accesses spread over an epoch, the first one comes about
  ``length / (a + 1)`` into it, so hotter pages fault sooner.
* **Promotion** (``should_numa_migrate_memory``): a slow page whose fault
  latency is under the hot threshold is a promotion candidate; candidates
  are promoted in fault order while the promotion rate limit
  (``numa_balancing_promote_rate_limit_MBps``) and the fast tier's free
  space allow. The faulting task migrates the page itself: the migration is
  synchronous (``MR_NUMA_MISPLACED``) and stalls the program.
* **Threshold adjustment** (``numa_promotion_adjust_threshold``): every
  ``adjust_period_ms`` (the kernel uses ``scan_period_max``, 60 s) the
  threshold moves one step of 2/16 of the default: down when the candidates
  of the period exceeded 110% of what the rate limit allows, up (to twice the
  default) when they stayed under 90%.
* **Overhead** (stalls of the program, task context): each hint fault costs
  ``hint_fault_ns`` and each marked PTE ``scan_pte_ns``; neither is in the
  hardware profile, so both are parameters with an assumed default.

Demotion is not this policy's job: the kernel relies on kswapd (``placement.demotion
= watermark``) to make room.
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

ONLY = {"placement": ("numab",)}

PARAMETERS = (
    Parameter("numab.scan_size_mb", 256.0, "float", "address range NUMA balancing scans per "
              "scan period, MB (kernel default numa_balancing_scan_size_mb=256)",
              low=1.0, high=65536.0, log=True, when=ONLY),
    Parameter("numab.scan_period_ms", 1000.0, "float", "time between scans, ms (kernel "
              "numa_balancing_scan_period_min_ms=1000)", low=1.0, high=60000.0, log=True,
              when=ONLY),
    Parameter("numab.hot_threshold_ms", 1000.0, "float", "hint-fault latency under which a "
              "slow page is hot, ms (kernel numa_balancing_hot_threshold_ms=1000)",
              low=0.01, high=60000.0, log=True, when=ONLY),
    Parameter("numab.rate_limit_mbps", 65536.0, "float", "promotion rate limit, MB/s (kernel "
              "numa_balancing_promote_rate_limit_MBps=65536)", low=1.0, high=65536.0,
              log=True, when=ONLY),
    Parameter("numab.adjust_threshold", True, "bool", "adjust the hot threshold toward the "
              "rate limit, as the kernel does", when=ONLY),
    Parameter("numab.adjust_period_ms", 60000.0, "float", "threshold adjustment period, ms "
              "(kernel: numa_balancing_scan_period_max_ms=60000)", low=1.0, high=600000.0,
              log=True, when=ONLY),
    Parameter("numab.hint_fault_ns", 1000.0, "float", "cost of one NUMA hint fault to the "
              "faulting task, ns (assumed: a minor fault plus the PTE update, about 1 us)",
              low=0.0, high=100000.0, tunable=False, when=ONLY),
    Parameter("numab.scan_pte_ns", 10.0, "float", "cost of marking one PTE while scanning, "
              "ns (assumed: change_prot_numa batches PTEs and flushes the TLB once per range)",
              low=0.0, high=10000.0, tunable=False, when=ONLY),
)

#: The kernel moves the threshold in steps of 2/16 of its default.
ADJUST_STEPS = 16


class NumaBalancing(PlacementPolicy):
    """NUMA-balancing memory tiering: scan, hint-fault latency, rate limit, threshold."""

    def __init__(self, params, hw, seed=0) -> None:
        super().__init__(params, hw, seed)
        self.scan_bytes_per_ns = params["numab.scan_size_mb"] * 2**20 / (
            params["numab.scan_period_ms"] * 1e6)
        self.default_th_ns = params["numab.hot_threshold_ms"] * 1e6
        self.threshold_ns = self.default_th_ns
        self.rate_bytes_per_ns = params["numab.rate_limit_mbps"] * 1e6 / 1e9
        self.adjust = bool(params["numab.adjust_threshold"])
        self.adjust_period_ns = params["numab.adjust_period_ms"] * 1e6
        self.fault_s = params["numab.hint_fault_ns"] * 1e-9
        self.pte_s = params["numab.scan_pte_ns"] * 1e-9
        self.scan_time: np.ndarray | None = None
        self.cursor = 0.0
        self.tokens = 0.0
        self.candidates = 0
        self.period_start: int | None = None
        self.epoch: Epoch | None = None
        self._stall = 0.0
        self.faults = 0

    def observe(self, epoch: Epoch) -> None:
        self.epoch = epoch

    def propose(self, view: PlacementView) -> np.ndarray:
        epoch = self.epoch
        if epoch is None:
            return empty_requests()
        if self.scan_time is None:
            self.scan_time = np.full(len(view.node_of), -1.0)
            self.period_start = epoch.start_ns
        fast, slow = view.fast[0], view.slow[0]
        page_bytes = int(view.page_bytes[0]) if len(view.page_bytes) else 4096
        out = self._faults(epoch, view, fast, page_bytes)
        self._scan(epoch, view, slow, page_bytes)
        self._adjust(epoch, page_bytes)
        return out

    def _faults(self, epoch: Epoch, view: PlacementView, fast: int, page_bytes: int
                ) -> np.ndarray:
        from ._placement_loops import hint_faults, stable_order

        pages, first, faults = hint_faults(epoch.pages, epoch.accesses, self.scan_time,
                                           view.node_of, fast, epoch.start_ns,
                                           epoch.length_ns, self.threshold_ns)
        self.faults += faults
        self._stall += faults * self.fault_s
        if not faults:
            return empty_requests()
        self.candidates += len(pages)
        self.tokens = min(self.tokens + self.rate_bytes_per_ns * epoch.length_ns,
                          self.rate_bytes_per_ns * epoch.length_ns + page_bytes)
        room = min(int(self.tokens // page_bytes), view.free(fast) // page_bytes)
        order, few = stable_order(first, 64)
        if not few:
            order = np.argsort(first, kind="stable")
        chosen = pages[order[:max(room, 0)]]
        self.tokens -= len(chosen) * page_bytes
        out = np.zeros(len(chosen), dtype=REQUEST_DTYPE)
        out["page"], out["dst"], out["reason"] = chosen, fast, Reason.NUMA_MISPLACED
        return out

    def _scan(self, epoch: Epoch, view: PlacementView, slow: int, page_bytes: int) -> None:
        n = len(view.node_of)
        span = self.scan_bytes_per_ns * epoch.length_ns / page_bytes
        start = self.cursor
        self.cursor += span
        count = int(self.cursor) - int(start)
        if count <= 0:
            return
        walked = (int(start) + np.arange(min(count, n))) % n
        position = np.arange(len(walked)) / len(walked)
        on_slow = view.node_of[walked] == slow
        self.scan_time[walked[on_slow]] = epoch.start_ns + position[on_slow] * epoch.length_ns
        self._stall += int(on_slow.sum()) * self.pte_s
        self.cursor %= n

    def _adjust(self, epoch: Epoch, page_bytes: int) -> None:
        end = epoch.start_ns + epoch.length_ns
        if not self.adjust or end - self.period_start < self.adjust_period_ns:
            return
        reference = self.rate_bytes_per_ns * (end - self.period_start) / page_bytes
        unit = self.default_th_ns * 2 / ADJUST_STEPS
        if self.candidates > reference * 11 / 10:
            self.threshold_ns = max(self.threshold_ns - unit, unit)
        elif self.candidates < reference * 9 / 10:
            self.threshold_ns = min(self.threshold_ns + unit, self.default_th_ns * 2)
        self.candidates = 0
        self.period_start = end

    def overhead(self) -> tuple[float, float]:
        """Program stall (hint faults, scanning) since the last call, and daemon CPU (none)."""
        stall, self._stall = self._stall, 0.0
        return stall, 0.0


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_placement_policies():
    return (PlacementPolicyInfo(
        name="numab", summary="Linux NUMA-balancing memory tiering: scan, hint-fault latency, "
        "promotion rate limit, self-adjusting hot threshold", factory=NumaBalancing,
        parameters=PARAMETERS, rate_limit="numab.rate_limit_mbps"),)


#: debugfs directory of the NUMA-balancing knobs (kernel/sched/debug.c, sched_init_debug).
DEBUGFS = "/sys/kernel/debug/sched/numa_balancing"


def _whole(value: float, unit: str) -> tuple[int, str]:
    """``value`` rounded to the kernel's integer knob, and a note when rounding changed it."""
    out = max(1, round(value))
    return out, ("" if out == value else f"rounded from {value:g} {unit} (the knob is an "
                 "integer, at least 1)")


@hookimpl
def migpolicy_kernel_settings(params):
    if params["placement"] != "numab":
        return (KernelSetting("sysctl", "kernel.numa_balancing", 0, ("placement",),
                              f"promotion is placement={params['placement']}'s, not NUMA "
                              "balancing's: leave it off"),)
    rate, rate_note = _whole(params["numab.rate_limit_mbps"], "MB/s")
    size, size_note = _whole(params["numab.scan_size_mb"], "MB")
    period, period_note = _whole(params["numab.scan_period_ms"], "ms")
    hot, hot_note = _whole(params["numab.hot_threshold_ms"], "ms")
    adjust, adjust_note = _whole(params["numab.adjust_period_ms"], "ms")
    adjusting = "mainline always adjusts the hot threshold in tiering mode " \
                "(numa_promotion_adjust_threshold), once per scan_period_max_ms"
    return (
        KernelSetting("sysctl", "kernel.numa_balancing", 2, ("placement",),
                      "NUMA_BALANCING_MEMORY_TIERING: promote hot slow-tier pages on hint "
                      "faults"),
        KernelSetting("sysctl", "kernel.numa_balancing_promote_rate_limit_MBps", rate,
                      ("numab.rate_limit_mbps",), rate_note),
        KernelSetting("debugfs", f"{DEBUGFS}/scan_size_mb", size, ("numab.scan_size_mb",),
                      size_note),
        KernelSetting("debugfs", f"{DEBUGFS}/scan_period_min_ms", period,
                      ("numab.scan_period_ms",),
                      "the model scans at a fixed period; the kernel adapts it between "
                      "scan_period_min_ms and scan_period_max_ms" +
                      (f"; {period_note}" if period_note else "")),
        KernelSetting("debugfs", f"{DEBUGFS}/hot_threshold_ms", hot,
                      ("numab.hot_threshold_ms",), hot_note),
        KernelSetting("debugfs", f"{DEBUGFS}/scan_period_max_ms", adjust,
                      ("numab.adjust_period_ms",),
                      "the kernel adjusts the hot threshold once per scan_period_max_ms; it "
                      "is also the longest scan period" +
                      (f"; {adjust_note}" if adjust_note else "")),
        NoKernelEquivalent(("numab.adjust_threshold",),
                           adjusting if params["numab.adjust_threshold"] else
                           f"no setting turns the adjustment off: {adjusting}"),
        NoKernelEquivalent(("numab.hint_fault_ns", "numab.scan_pte_ns"),
                           "a cost in the model (assumed), not a kernel setting"),
    )
