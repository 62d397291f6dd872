"""The ``dsa`` copy engine: offload to Intel Data Streaming Accelerator engines.

A Sapphire Rapids class socket has DSA devices, each with processing engines
behind shared work queues. Per folio the CPU writes a work descriptor; every
``batch_size`` descriptors it submits one batch descriptor (ENQCMD or
MOVDIR64B), so submission costs amortise over a batch; the CPU takes one
completion per migration batch. The engines process descriptors in parallel:
a cost per descriptor plus the bytes, at a soft minimum of the engines', the
devices' (their fabric ports) and the node link's bandwidth. ``workers`` is
the number of engines used, filling one device before the next. Engine time
is not CPU time. User space here drives no DSA, so the figures are modelled.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import CopyEngine, hookimpl, worker_parameter
from migpolicy.hardware.model import link_gbps, soft_min

from ._kernel import no_offload
from ._pricing import batch_nodes, cost_rows, ns

NAME = "dsa"


def max_engines(hw) -> int:
    """DSA engines on a profile (0 when it has none)."""
    if not hw.has("engines.dsa"):
        return 0
    return int(hw.p("engines.dsa.devices") * hw.p("engines.dsa.engines_per_device"))


PARAMETERS = (
    worker_parameter("dsa.engines", NAME, 8, "DSA engine", max_engines),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="Intel DSA offload: batch descriptors, engines per device, device ports",
            worker_unit="engine",
            max_workers=max_engines,
            available=lambda: False,
            workers_param="dsa.engines",
            modelled_only="user space here drives no DSA device; dsa figures are modelled",
            cache_resident=lambda params: 0.0,  # DSA writes memory (no cache control asked)
        ),
    )


def price_dsa(batches, hw, engines: np.ndarray) -> np.ndarray:
    """Cost rows for copying each batch with ``engines[i]`` DSA engines."""
    p = hw.p
    n = batches.nfolios.astype(float)
    nbytes = batches.nbytes.astype(float)
    active = np.minimum(np.minimum(engines, max_engines(hw)), n).astype(float)
    devices = np.ceil(active / p("engines.dsa.engines_per_device"))
    link = np.empty(len(n))
    for mask, src, dst in batch_nodes(batches):
        link[mask] = link_gbps(hw, src, dst)
    bandwidth = soft_min([active * p("engines.dsa.engine_gbps"),
                          devices * p("engines.dsa.device_gbps"), link],
                         p("engines.dsa.saturation"))
    engine_s = n * p("engines.dsa.desc_ns") * ns / active + nbytes / (bandwidth * 1e9)
    submissions = np.ceil(n / p("engines.dsa.batch_size"))
    cpu = (n * p("engines.dsa.prep_ns") + submissions * p("engines.dsa.submit_ns")
           + p("engines.dsa.completion_ns")) * ns
    return cost_rows(batches, wall_s=cpu + engine_s, cpu_s=cpu, engine_s=engine_s * active)


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME or not hw.has("engines.dsa"):
        return None
    return price_dsa(batches, hw, batches.workers)


@hookimpl
def migpolicy_kernel_settings(params):
    return no_offload(params, NAME, "dsa.engines", "Intel DSA")
