"""The ``auto`` engine selector: choose engine and worker count per batch.

Answers the batch hook when ``engine`` is ``auto``. Per batch, from the mean
folio size, the batch's bytes and the system load (seed point 1d: busy CPUs
make threads dearer):

* a batch smaller than ``auto.min_batch_bytes`` is copied by ``cpu`` (threads
  would cost more to start than they save);
* folios of at least ``auto.dma_min_folio`` go to ``dma`` when the profile has
  DMA channels, and so does any batch when ``system.load`` is at least
  ``auto.dma_load`` (offload spares busy CPUs);
* everything else goes to ``mt`` with ``auto.threads`` threads, no more than
  the CPUs left free.

All thresholds are tunable parameters.
"""

from __future__ import annotations

import numpy as np

from migpolicy.hardware.model import free_threads, worker_node
from migpolicy.hookspecs import hookimpl
from migpolicy.params import Parameter, suggest

from ._pricing import batch_nodes
from .engine_dma import max_channels
from .engine_mt import max_threads
from .kernel_batch import plan_batches

ENGINES = ("cpu", "mt", "dma")
CPU, MT, DMA = range(3)

PARAMETERS = (
    Parameter("auto.min_batch_bytes", 256 << 10, "int", "batches smaller than this use the "
              "cpu engine", low=4096, high=64 << 20, log=True),
    Parameter("auto.dma_min_folio", 2 << 20, "int", "folios at least this large go to DMA",
              low=4096, high=1 << 30, log=True),
    Parameter("auto.dma_load", 0.75, "float", "system load from which every batch goes to DMA",
              low=0.0, high=1.0),
    Parameter("auto.threads", 8, "int", "threads of the mt engine when chosen", low=1, high=1024),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_search_space(trial, hw):
    return suggest(trial, PARAMETERS, {"auto.threads": (1, max_threads(hw))})


def choose(nfolios, nbytes, hw, params, src: int = 0, dst: int = 1):
    """Engine index (into :data:`ENGINES`) and worker count for each batch."""
    mean_folio = nbytes / np.maximum(nfolios, 1)
    load = params.get("system.load", 0.0)
    channels = max_channels(hw)
    engine = np.full(len(nfolios), MT, dtype=np.int64)
    if channels:
        to_dma = (mean_folio >= params["auto.dma_min_folio"]) | (load >= params["auto.dma_load"])
        engine[to_dma] = DMA
    engine[nbytes < params["auto.min_batch_bytes"]] = CPU
    free = free_threads(worker_node(hw, src, dst, params.get("mt.side", "push")), load)
    threads = int(max(1, min(params["auto.threads"], max_threads(hw), free)))
    dma_channels = int(max(1, min(params["dma.channels"], channels or 1)))
    workers = np.select([engine == MT, engine == DMA], [threads, dma_channels], 1)
    return engine, workers


@hookimpl
def migpolicy_batch(folios, hw, params):
    if params["engine"] != "auto":
        return None
    plan = plan_batches(folios, hw, ENGINES, CPU, 1, params["batch.max_folios"])
    if plan.n_batches == 0:
        return plan
    for mask, src, dst in batch_nodes(plan):
        engine, workers = choose(plan.nfolios[mask], plan.nbytes[mask], hw, params, src, dst)
        plan.engine[mask] = engine
        plan.workers[mask] = workers
    return plan
