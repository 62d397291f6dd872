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
    cost_columns,
    hookimpl,
    page_table_entries,
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
    n = len(folios)
    ptes = page_table_entries(folios, hw.base_page, mappings=True)
    wall = hw.p("stages.isolate.folio_ns") * ns + (hw.p("stages.isolate.pte_ns") * ns) * ptes
    if not folios["flags"].max(initial=0) & (PINNED | BUSY):
        return IsolateResult(costs=cost_columns(n, wall_s=wall, cpu_s=wall, folios=1),
                             isolated=np.ones(n, dtype=bool))
    max_retries = int(hw.p("stages.isolate.max_retries"))
    pinned = (folios["flags"] & PINNED) != 0
    busy = ((folios["flags"] & BUSY) != 0) & ~pinned
    needed = int(params["isolate.busy_retries"])
    retries = np.where(pinned, max_retries, np.where(busy, min(needed, max_retries), 0))
    failed = pinned | (busy & (needed > max_retries))
    wall = wall + retries * (hw.p("stages.isolate.retry_ns") * ns)
    costs = cost_columns(n, wall_s=wall, cpu_s=wall, folios=1, retries=retries, failures=failed)
    return IsolateResult(costs=costs, isolated=~failed)


@hookimpl
def migpolicy_kernel_settings(params):
    return (NoKernelEquivalent(("isolate.busy_retries",),
                               "describes the workload (how long folios stay busy), not a "
                               "kernel setting"),)
