"""A migpolicy copy engine ``nt``: one thread copying with non-temporal stores.

The kernel copies a folio with ordinary stores: every destination cache line
is first read into the cache (read-for-ownership), then written back, and the
copy evicts the application's working set on its way. Non-temporal stores
(``MOVNTI``/``MOVNTDQ`` on x86, ``STNP`` on arm64) write around the cache:
no read-for-ownership and no pollution, followed by one ``SFENCE`` per batch.

The model is the built-in ``cpu`` engine's (one thread's copy bandwidth between
the two nodes, plus a per-folio call cost) with that bandwidth multiplied by
``nt.bandwidth_factor``. Nothing is charged for cache pollution because the
copy causes none. The factor is a tunable parameter, so ``migpolicy tune`` can
fit it against a trace, and ``--param nt.bandwidth_factor=1.4`` sets it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from migpolicy.contract import COST_DTYPE, BatchPlan, CopyEngine, Parameter, Profile, hookimpl
from migpolicy.hardware.model import copy_bandwidth_gbps

__version__ = "0.1.0"

NAME = "nt"

PARAMETERS = (
    Parameter("nt.bandwidth_factor", 1.3, "float", "copy bandwidth with non-temporal stores "
              "relative to the cpu engine's (no read-for-ownership of the destination)",
              low=0.5, high=2.0, tunable=False),
)


@hookimpl
def migpolicy_copy_engines() -> tuple[CopyEngine, ...]:
    return (
        CopyEngine(
            name=NAME,
            summary="single-thread copy with non-temporal stores (no cache pollution)",
            worker_unit="thread",
            max_workers=lambda hw: 1,
            modelled_only="Python cannot issue non-temporal stores; nt figures are modelled",
        ),
    )


@hookimpl
def migpolicy_parameters() -> tuple[Parameter, ...]:
    return PARAMETERS


@hookimpl
def migpolicy_copy(
    batches: BatchPlan, engine: str, hw: Profile, params: Mapping[str, Any]
) -> np.ndarray | None:
    if engine != NAME:
        return None
    first = batches.folios[batches.bounds[:-1]]
    bandwidth = np.empty(batches.n_batches)
    load = params.get("system.load", 0.0)
    for src, dst in set(zip(first["src"].tolist(), first["dst"].tolist(), strict=True)):
        mask = (first["src"] == src) & (first["dst"] == dst)
        bandwidth[mask] = copy_bandwidth_gbps(hw, 1, src=src, dst=dst, load=load)
    bandwidth *= params["nt.bandwidth_factor"] * 1e9
    wall = batches.nfolios * hw.p("engines.cpu.folio_ns") * 1e-9 + batches.nbytes / bandwidth
    rows = np.zeros(batches.n_batches, dtype=COST_DTYPE)
    rows["wall_s"] = wall
    rows["cpu_s"] = wall
    rows["bytes"] = batches.nbytes
    rows["folios"] = batches.nfolios
    return rows
