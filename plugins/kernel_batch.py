"""Kernel-default batch stage: consecutive batches of at most ``batch.max_folios`` folios.

As ``migrate_pages_batch()`` does with ``NR_MAX_BATCHED_MIGRATION`` (512):
every batch pays a fixed overhead, including the one batched TLB flush, and
is copied by the engine named by ``engine`` with ``workers`` threads or channels.
"""

from __future__ import annotations

import numpy as np

from migpolicy.costs import zero_costs
from migpolicy.folios import BatchPlan
from migpolicy.hookspecs import hookimpl
from migpolicy.params import Parameter

from ._pricing import ns

PARAMETERS = (
    Parameter("engine", "cpu", "str", "copy engine for every batch (see `migpolicy plugins`), "
              "or auto to choose per batch", tunable=False),
    Parameter("workers", 1, "int", "threads, DMA channels or GPU streams of the fixed engine",
              low=1, high=1024, tunable=False),
    Parameter("batch.max_folios", 512, "int", "most folios per migration batch "
              "(kernel: NR_MAX_BATCHED_MIGRATION = 512)", low=1, high=4096, log=True),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_search_space(trial, hw):
    from migpolicy.params import suggest

    return suggest(trial, PARAMETERS)


def split_batches(n: int, max_folios: int) -> np.ndarray:
    """Batch bounds for ``n`` folios in consecutive batches of at most ``max_folios``."""
    bounds = np.arange(0, n, max_folios, dtype=np.int64)
    return np.append(bounds, n)


def plan_batches(folios, hw, engines, engine, workers, max_folios) -> BatchPlan:
    """A plan of consecutive batches; ``engine``/``workers`` are per-batch arrays or scalars."""
    bounds = split_batches(len(folios), max_folios)
    nb = len(bounds) - 1
    overhead = zero_costs(nb)
    overhead["wall_s"] = hw.p("stages.batch.batch_ns") * ns
    overhead["cpu_s"] = overhead["wall_s"]
    return BatchPlan(
        folios=folios,
        bounds=bounds,
        engines=tuple(engines),
        engine=np.broadcast_to(np.asarray(engine, dtype=np.int64), nb).copy(),
        workers=np.broadcast_to(np.asarray(workers, dtype=np.int64), nb).copy(),
        overhead=overhead,
    )


@hookimpl(trylast=True)
def migpolicy_batch(folios, hw, params):
    return plan_batches(folios, hw, (params["engine"],), 0, params["workers"],
                        params["batch.max_folios"])
