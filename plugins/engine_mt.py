"""The ``mt`` copy engine: folio copies split across kernel worker threads.

With more folios than threads each thread copies whole folios (the busiest
gets ``ceil(n / T)``); with fewer, every folio is split into ``T`` pieces.
Workers sit on the source node (push) or the destination node (pull), spread
across LLC domains or filling one first; each costs a start-up per batch.
Bandwidth saturates per domain and per node link (:mod:`migpolicy.hardware.model`).
``mt.store`` chooses cached or non-temporal stores, as for the ``cpu`` engine.
Busy CPUs (``system.load``) leave fewer threads to run on: threads beyond the
free CPUs time-share them, so the wall time stretches and the CPU time never
exceeds what the free CPUs can give.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    CopyEngine,
    KernelSetting,
    NoKernelEquivalent,
    Parameter,
    hookimpl,
    worker_parameter,
)
from migpolicy.hardware.model import (
    PLACEMENTS,
    SIDES,
    STORES,
    cache_resident,
    copy_bandwidth_gbps,
    free_threads,
    worker_node,
)

from ._kernel import OFFLOAD_NOTE
from ._pricing import batch_nodes, cost_rows, ns

NAME = "mt"

#: The engines whose workers are CPU threads placed like mt's (auto may choose mt).
_USES_MT = {"engine": (NAME, "auto")}


def max_threads(hw) -> int:
    """Most worker threads on a profile: the engine's limit."""
    return int(hw.p("engines.mt.max_threads"))


PARAMETERS = (
    worker_parameter("mt.threads", NAME, 8, "worker thread", max_threads),
    Parameter("mt.placement", "spread", "choice", "spread workers across LLC domains, or fill "
              "one domain first", choices=PLACEMENTS, when=_USES_MT,
              applies=lambda hw: any(node["ccds"] > 1 for node in hw.cpu_nodes)),
    Parameter("mt.side", "push", "choice", "workers on the source node (push) or the "
              "destination node (pull)", choices=SIDES, when=_USES_MT,
              applies=lambda hw: len(hw.cpu_nodes) > 1),
    Parameter("mt.store", "cached", "choice", "stores of the copy: cached, or nt "
              "(non-temporal: no read-for-ownership, destination not left in the cache)",
              choices=STORES, when=_USES_MT),
    Parameter("system.load", 0.0, "float", "fraction of CPUs busy with other work; threads "
              "beyond the free ones time-share", low=0.0, high=0.99, tunable=False),
)


def _execute(nbytes: int, folio_size: int, workers: int) -> float:
    from migpolicy.execute import copy_folios

    return copy_folios(nbytes, folio_size, threads=workers)


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="multi-threaded copy: worker threads, spread/fill placement, push/pull",
            worker_unit="thread",
            max_workers=max_threads,
            executor=_execute,
            workers_param="mt.threads",
            cache_resident=lambda params: cache_resident(params["mt.store"]),
        ),
    )


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


def price_mt(batches, hw, params, threads: np.ndarray) -> np.ndarray:
    """Cost rows for copying each batch with ``threads[i]`` workers."""
    n = batches.nfolios.astype(float)
    nbytes = batches.nbytes.astype(float)
    t = threads.astype(float)
    whole = n >= t
    busiest_bytes = np.where(whole, np.ceil(n / t) * nbytes / n, nbytes / t)
    busiest_folios = np.where(whole, np.ceil(n / t), n)
    copy_s = np.zeros(len(n))
    running = t.copy()  # threads that really run at once: no more than the free CPUs
    load = params.get("system.load", 0.0)
    for mask, src, dst in batch_nodes(batches):
        side = params["mt.side"]
        bw = copy_bandwidth_gbps(hw, t[mask], src=src, dst=dst, load=load,
                                 placement=params["mt.placement"], side=side,
                                 store=params["mt.store"])
        copy_s[mask] = busiest_bytes[mask] / (bw / t[mask] * 1e9)
        running[mask] = np.minimum(t[mask], free_threads(worker_node(hw, src, dst, side), load))
    copy_s += busiest_folios * hw.p("engines.cpu.folio_ns") * ns
    start_s = t * hw.p("engines.mt.thread_start_ns") * ns
    wall = start_s + copy_s
    # Threads beyond the free CPUs time-share them: the wall time above already
    # stretches (bandwidth counts only the running threads), and CPU time is
    # what the running CPUs can give in that time, never more.
    workers_busy = running * copy_s
    return cost_rows(batches, wall_s=wall, cpu_s=start_s + workers_busy, worker_s=workers_busy)


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME:
        return None
    return price_mt(batches, hw, params, batches.workers)


@hookimpl
def migpolicy_kernel_settings(params):
    out = [NoKernelEquivalent(("system.load",), "describes the machine's load, not a setting")]
    if params["engine"] not in _USES_MT["engine"]:
        return out
    if params["engine"] == NAME:
        out.append(KernelSetting("offload", "copy offload (RFC V3): engine",
                                 "multi-threaded CPU copy", ("engine",), OFFLOAD_NOTE))
    out += [
        KernelSetting("offload", "copy offload (RFC V3): worker threads", params["mt.threads"],
                      ("mt.threads",), OFFLOAD_NOTE),
        NoKernelEquivalent(("mt.placement", "mt.side"), "RFC V2 measured where the threads "
                           "run (table 3: spread across CCDs or filling one), but the "
                           "published material names no setting for it"),
        NoKernelEquivalent(("mt.store",), "no setting chooses non-temporal stores for "
                           "folio copies (a discussion point of the LSF/MM 2025 proposal)"),
    ]
    return out
