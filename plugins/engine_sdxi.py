"""The ``sdxi`` copy engine: an SNIA SDXi (Smart Data Accelerator Interface) device.

SDXi standardises a memory-to-memory data mover: software writes 64-byte
descriptors into a ring in memory and rings a doorbell once for many of them;
the device's functions (one ring each) work through their rings in parallel
and write a completion. Priced per batch: descriptor writes per folio and one
doorbell on the CPU, then per-descriptor function time and the bytes at a soft
minimum of the functions', the device's and the node link's bandwidth.
``workers`` is the number of functions. No SDXi device ships yet, so every
figure is modelled and every profile value assumed.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import CopyEngine, hookimpl, worker_parameter
from migpolicy.hardware.model import link_gbps, soft_min

from ._kernel import no_offload
from ._pricing import batch_nodes, cost_rows, ns

NAME = "sdxi"


def max_functions(hw) -> int:
    """SDXi functions on a profile (0 when it has no SDXi device)."""
    return int(hw.p("engines.sdxi.functions")) if hw.has("engines.sdxi") else 0


PARAMETERS = (
    worker_parameter("sdxi.functions", NAME, 4, "SDXi function", max_functions),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="SDXi data mover: descriptor rings, one doorbell per batch, functions",
            worker_unit="function",
            max_workers=max_functions,
            available=lambda: False,
            workers_param="sdxi.functions",
            modelled_only="no SDXi device is available; sdxi figures are modelled",
            cache_resident=lambda params: 0.0,  # the device writes memory, not the CPU's cache
        ),
    )


def price_sdxi(batches, hw, functions: np.ndarray) -> np.ndarray:
    """Cost rows for copying each batch over ``functions[i]`` SDXi functions."""
    p = hw.p
    n = batches.nfolios.astype(float)
    nbytes = batches.nbytes.astype(float)
    active = np.minimum(np.minimum(functions, max_functions(hw)), n).astype(float)
    link = np.empty(len(n))
    for mask, src, dst in batch_nodes(batches):
        link[mask] = link_gbps(hw, src, dst)
    bandwidth = soft_min([active * p("engines.sdxi.function_gbps"),
                          np.full(len(n), p("engines.sdxi.total_gbps")), link],
                         p("engines.sdxi.saturation"))
    device_s = n * p("engines.sdxi.desc_ns") * ns / active + nbytes / (bandwidth * 1e9)
    cpu = (n * p("engines.sdxi.prep_ns") + p("engines.sdxi.doorbell_ns")
           + p("engines.sdxi.completion_ns")) * ns
    return cost_rows(batches, wall_s=cpu + device_s, cpu_s=cpu, engine_s=device_s * active)


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME or not hw.has("engines.sdxi"):
        return None
    return price_sdxi(batches, hw, batches.workers)


@hookimpl
def migpolicy_kernel_settings(params):
    return no_offload(params, NAME, "sdxi.functions", "an SDXi data mover")
