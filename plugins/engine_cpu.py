"""The ``cpu`` copy engine: the kernel's sequential ``folio_copy()`` on the initiating CPU.

Priced per batch as one thread's copy bandwidth (capped by its LLC domain and
the node link) plus a per-folio call cost; all of it is the initiator's CPU time.
``cpu.store`` chooses cached or non-temporal stores: non-temporal ones skip the
destination's read-for-ownership (``memory.nt_factor`` more bandwidth) and
leave nothing in the cache (the engine's ``cache_resident`` figure).
Real execution copies buffers with one thread in this process.
"""

from __future__ import annotations

from migpolicy.contract import CopyEngine, KernelSetting, NoKernelEquivalent, Parameter, hookimpl
from migpolicy.hardware.model import STORES, cache_resident, copy_bandwidth_gbps

from ._pricing import batch_nodes, cost_rows, ns

NAME = "cpu"

PARAMETERS = (
    Parameter("cpu.store", "cached", "choice", "stores of the copy: cached, or nt "
              "(non-temporal: no read-for-ownership, destination not left in the cache)",
              choices=STORES, when={"engine": (NAME, "auto")}),
)


def _execute(nbytes: int, folio_size: int, workers: int) -> float:
    from migpolicy.execute import copy_folios

    return copy_folios(nbytes, folio_size, threads=1)


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="sequential folio_copy() on the initiating CPU (kernel default)",
            worker_unit="thread",
            max_workers=lambda hw: 1,
            executor=_execute,
            cache_resident=lambda params: cache_resident(params["cpu.store"]),
        ),
    )


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME:
        return None
    wall = batches.nfolios * hw.p("engines.cpu.folio_ns") * ns
    load = params.get("system.load", 0.0)
    for mask, src, dst in batch_nodes(batches):
        bw = copy_bandwidth_gbps(hw, 1, src=src, dst=dst, load=load, store=params["cpu.store"])
        wall[mask] += batches.nbytes[mask] / (bw * 1e9)
    return cost_rows(batches, wall_s=wall, cpu_s=wall)


@hookimpl
def migpolicy_kernel_settings(params):
    if params["engine"] not in (NAME, "auto"):
        return None
    cached = params["cpu.store"] == "cached"
    out = [NoKernelEquivalent(("cpu.store",), "cached stores are what the kernel's folio copy "
                              "does; nothing to set" if cached else "no setting chooses "
                              "non-temporal stores for folio copies (a discussion point of "
                              "the LSF/MM 2025 proposal)")]
    if params["engine"] == NAME:
        out.append(KernelSetting("offload", "copy offload (RFC V3): engine", "off", ("engine",),
                                 "mainline copies folios one by one on the migrating CPU"))
    return out
