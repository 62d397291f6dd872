"""The ``auto`` engine selector: per batch, the engine and worker count of lowest predicted cost.

Wraps the batch stage when ``engine`` is ``auto``: whatever plugin formed the
batches, every registered copy engine that has workers on the profile and
serves the batch's node pair is quoted for them (through the pipeline's
``quote``, so ``gpu``, third-party engines and learned profiles are priced
exactly as the copy stage would) at
worker counts 1, 2, 4 ... up to the engine's own worker parameter
(``mt.threads``, ``dma.channels``, ``gpu.streams``), and each batch goes to the
cheapest. The cost weighs wall time against CPU time by the migration's
reason, as the kernel's offload interface filters on it: a synchronous
migration (a promotion on a NUMA hint fault, ``move_pages(2)``) stalls a task,
so ``auto.cpu_weight`` is small; an asynchronous one (kswapd demotion, DAMOS,
compaction) stalls nobody, so ``auto.async_cpu_weight`` makes CPU time count.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from migpolicy.contract import ASYNC_REASONS, NoKernelEquivalent, Parameter, hookimpl

NAME = "auto"
_ONLY_AUTO = {"engine": (NAME,)}

PARAMETERS = (
    Parameter("auto.cpu_weight", 0.0, "float", "seconds of wall time one CPU-second is worth "
              "when auto chooses for a synchronous migration (0: fastest wins)",
              low=0.0, high=4.0, when=_ONLY_AUTO),
    Parameter("auto.async_cpu_weight", 1.0, "float", "the same for an asynchronous migration "
              "(demotion, DAMOS, compaction), whose wall time stalls no task",
              low=0.0, high=64.0, when=_ONLY_AUTO),
)

_ASYNC = np.array(sorted(ASYNC_REASONS), dtype=np.uint8)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


def _worker_counts(limit: int) -> list[int]:
    """1, 2, 4 ... below ``limit``, and ``limit`` itself."""
    counts = [1 << k for k in range(max(limit, 1).bit_length()) if 1 << k < limit]
    return [*counts, max(limit, 1)]


def candidates(engines, hw, params) -> list[tuple[str, int]]:
    """Every (engine, worker count) pair auto may choose on ``hw``."""
    out = []
    for name, engine in sorted(engines.items()):
        limit = engine.max_workers(hw)
        if limit < 1:
            continue
        for workers in _worker_counts(min(engine.workers(params), limit)):
            out.append((name, workers))
    return out


@hookimpl(wrapper=True)
def migpolicy_batch(folios, hw, params, engines, quote):
    plan = yield
    if params["engine"] != NAME or plan is None or plan.n_batches == 0:
        return plan
    choices = candidates(engines, hw, params)
    names = tuple(sorted({name for name, _ in choices}))
    first = plan.folios[plan.bounds[:-1]]
    weight = np.where(np.isin(first["reason"], _ASYNC), params["auto.async_cpu_weight"],
                      params["auto.cpu_weight"])
    pair = first["src"].astype(np.int64) * 65536 + first["dst"]
    pairs = np.unique(pair)
    best = np.full(plan.n_batches, np.inf)
    engine = np.zeros(plan.n_batches, dtype=np.int64)
    workers = np.ones(plan.n_batches, dtype=np.int64)
    for name, count in choices:
        trial = dataclasses.replace(plan, engines=(name,),
                                    engine=np.zeros(plan.n_batches, dtype=np.int64),
                                    workers=np.full(plan.n_batches, count, dtype=np.int64))
        rows = quote(trial, name)
        cost = rows["wall_s"] + weight * rows["cpu_s"]
        for p in pairs:
            if not engines[name].serves(hw, int(p) // 65536, int(p) % 65536):
                cost[pair == p] = np.inf
        better = cost < best
        best[better] = cost[better]
        engine[better] = names.index(name)
        workers[better] = count
    return dataclasses.replace(plan, engines=names, engine=engine, workers=workers)


@hookimpl
def migpolicy_kernel_settings(params):
    if params["engine"] != NAME:
        return None
    return (NoKernelEquivalent(("engine", "auto.cpu_weight", "auto.async_cpu_weight"),
                               "the kernel has no per-batch choice of copy engine by "
                               "predicted cost (RFC V4's should_batch() lets a driver decline "
                               "a migration by its reason, with no setting)"),)
