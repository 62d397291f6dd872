"""Kernel-default isolate stage: isolate from the LRU and unmap, one folio at a time.

Per folio: a fixed cost plus a cost per page-table entry per mapping (a
PMD-mapped THP has one entry, an mTHP one PTE per base page), which is why
unmapping stays serial and grows with the entry count. Pinned folios fail
after the kernel's retry passes; busy folios succeed after
``isolate.busy_retries`` retries if that is within the kernel's limit.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    BUSY,
    PINNED,
    IsolateResult,
    NoKernelEquivalent,
    Parameter,
    hookimpl,
    page_table_entries,
    zero_costs,
)

from ._pricing import ns

PARAMETERS = (
    Parameter("isolate.busy_retries", 1, "int", "retries a busy folio needs before it "
              "can be isolated", low=0, high=100, tunable=False),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl(trylast=True)
def migpolicy_isolate(folios, hw, params):
    costs = zero_costs(len(folios))
    ptes = page_table_entries(folios, hw.base_page)
    if folios["mapcount"].max(initial=1) > 1:
        ptes = ptes * np.maximum(folios["mapcount"], 1)
    wall = hw.p("stages.isolate.folio_ns") * ns + (hw.p("stages.isolate.pte_ns") * ns) * ptes
    costs["folios"] = 1
    isolated = np.ones(len(folios), dtype=bool)
    if folios["flags"].max(initial=0) & (PINNED | BUSY):
        max_retries = int(hw.p("stages.isolate.max_retries"))
        pinned = (folios["flags"] & PINNED) != 0
        busy = ((folios["flags"] & BUSY) != 0) & ~pinned
        needed = int(params["isolate.busy_retries"])
        retries = np.where(pinned, max_retries, np.where(busy, min(needed, max_retries), 0))
        failed = pinned | (busy & (needed > max_retries))
        wall = wall + retries * (hw.p("stages.isolate.retry_ns") * ns)
        costs["retries"] = retries
        costs["failures"] = failed
        isolated = ~failed
    costs["wall_s"] = wall
    costs["cpu_s"] = wall
    return IsolateResult(costs=costs, isolated=isolated)


@hookimpl
def migpolicy_kernel_settings(params):
    return (NoKernelEquivalent(("isolate.busy_retries",),
                               "describes the workload (how long folios stay busy), not a "
                               "kernel setting"),)
