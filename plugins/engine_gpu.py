"""The ``gpu`` copy engine: a GPU copy engine moving folios over the host-device link.

Priced per batch as one launch of a batched copy, a per-folio cost to build
the copy list on the CPU, and the bytes over the link (PCIe or NVLink-C2C) at
the lower of the streams' and the link's bandwidth in the batch's direction
(host-to-device ``link_gbps``, device-to-host ``d2h_link_gbps``); pageable (unpinned) memory
runs at a fraction of it. Real execution uses CuPy or PyTorch where either
sees a GPU.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import (
    CopyEngine,
    NoKernelEquivalent,
    Parameter,
    hookimpl,
    worker_parameter,
)
from migpolicy.hardware.model import soft_min

from ._kernel import no_offload
from ._pricing import batch_nodes, cost_rows, ns

NAME = "gpu"


def max_streams(hw) -> int:
    """GPU copy streams on a profile (0 when it has no GPU)."""
    return int(hw.p("engines.gpu.streams")) if hw.has("engines.gpu") else 0


PARAMETERS = (
    Parameter("gpu.pinned", True, "bool", "source memory is pinned (page-locked)",
              tunable=False),
    worker_parameter("gpu.streams", NAME, 2, "GPU copy stream", max_streams),
)


def serves(hw, src: int, dst: int) -> bool:
    """The GPU copy engine moves to or from GPU memory (a node of kind ``hbm``)."""
    return "hbm" in (hw.node(src).kind, hw.node(dst).kind)


def _available() -> bool:
    from migpolicy.execute import gpu_backend

    return gpu_backend() is not None


def _execute(nbytes: int, folio_size: int, workers: int) -> float:
    from migpolicy.execute import gpu_copy_folios

    return gpu_copy_folios(nbytes, folio_size, streams=workers)


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="GPU copy engine over PCIe or NVLink-C2C: launch latency, link bandwidth",
            worker_unit="stream",
            max_workers=max_streams,
            available=_available,
            executor=_execute,
            workers_param="gpu.streams",
            serves=serves,
            cache_resident=lambda params: 0.0,  # device memory or host memory, not the cache
        ),
    )


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


def price_gpu(batches, hw, params, streams: np.ndarray) -> np.ndarray:
    """Cost rows for copying each batch with ``streams[i]`` GPU copy streams."""
    p = hw.p
    s = np.minimum(streams, p("engines.gpu.streams")).astype(float)
    # The link is directional where measured: host-to-device (link_gbps) is faster
    # than device-to-host (d2h_link_gbps) on NVLink-C2C; a batch moves one way.
    link = np.full(len(s), p("engines.gpu.link_gbps"))
    device = hw.references.get("engines.gpu.device_node")
    for mask, src, _dst in batch_nodes(batches):
        if device is not None and src == device:
            link[mask] = p("engines.gpu.d2h_link_gbps")
    bw = soft_min([s * p("engines.gpu.stream_gbps"), link], p("memory.saturation"))
    if not params["gpu.pinned"]:
        bw = bw * p("engines.gpu.pageable_factor")
    transfer_s = batches.nbytes / (bw * 1e9)
    cpu = p("engines.gpu.launch_ns") * ns + batches.nfolios * p("engines.gpu.folio_ns") * ns
    return cost_rows(batches, wall_s=cpu + transfer_s, cpu_s=cpu, engine_s=transfer_s * s)


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME or not hw.has("engines.gpu"):
        return None
    return price_gpu(batches, hw, params, batches.workers)


@hookimpl
def migpolicy_kernel_settings(params):
    pinned = NoKernelEquivalent(("gpu.pinned",), "describes the source memory, not a setting")
    return (pinned, *(no_offload(params, NAME, "gpu.streams", "GPU copy engines") or ()))
