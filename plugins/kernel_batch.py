"""Kernel-default batch stage: consecutive batches of at most ``batch.max_folios`` folios.

As ``migrate_pages_batch()`` does with ``NR_MAX_BATCHED_MIGRATION`` (512):
every batch pays a fixed overhead, including the one batched TLB flush, and
is copied by the engine named by ``engine`` with that engine's worker count
(``mt.threads``, ``dma.channels`` ...). A batch never spans two epochs or two
node pairs. With ``engine=auto`` the plan names the placeholder engine
``auto``, which the ``auto`` selector replaces per batch.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    BatchPlan,
    KernelSetting,
    Parameter,
    consecutive_batches,
    hookimpl,
    zero_costs,
)

from ._pricing import ns

PARAMETERS = (
    Parameter("engine", "cpu", "choice", "copy engine for every batch (see `migpolicy "
              "plugins`), or auto to choose per batch by predicted cost", registry="engine"),
    Parameter("batch.max_folios", 512, "int", "most folios per migration batch "
              "(kernel: NR_MAX_BATCHED_MIGRATION = 512)", low=1, high=4096, log=True),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl(trylast=True)
def migpolicy_batch(folios, hw, params, engines):
    name = params["engine"]
    workers = engines[name].workers(params) if name in engines else 1
    bounds = consecutive_batches(folios, int(params["batch.max_folios"]))
    nb = len(bounds) - 1
    overhead = zero_costs(nb)
    overhead["wall_s"] = hw.p("stages.batch.batch_ns") * ns
    overhead["cpu_s"] = overhead["wall_s"]
    return BatchPlan(folios=folios, bounds=bounds, engines=(name,),
                     engine=np.zeros(nb, dtype=np.int64),
                     workers=np.full(nb, workers, dtype=np.int64), overhead=overhead)


@hookimpl
def migpolicy_kernel_settings(params):
    batch = int(params["batch.max_folios"])
    return (KernelSetting("build", "NR_MAX_BATCHED_MIGRATION (mm/migrate.c)", batch,
                          ("batch.max_folios",),
                          "512 in mainline" + ("" if batch == 512 else
                                               ": another value needs a rebuilt kernel")),)
