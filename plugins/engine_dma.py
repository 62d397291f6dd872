"""The ``dma`` copy engine: offload to DMA channels (AMD PTDMA, Intel DSA, SDXi).

Per folio the CPU prepares a descriptor; each channel pays a cost per
descriptor and per base page of a PTE-mapped folio, and moves the bytes;
folios are spread over the channels, whose combined bandwidth saturates; the
CPU handles one completion per batch. A channel overlaps the descriptor work
of the next transfers with the data movement of the current one, so the slower
of the two sets its pace (a soft maximum, ``engines.dma.overlap``; 1: no
overlap, the two add). Channel time is engine time, not CPU time.
User space cannot drive a DMA engine, so these figures are always modelled.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import PMD_MAPPED, CopyEngine, KernelSetting, hookimpl, worker_parameter
from migpolicy.hardware.model import soft_max, soft_min

from ._kernel import OFFLOAD_NOTE
from ._pricing import cost_rows, ns

NAME = "dma"


def max_channels(hw) -> int:
    """DMA channels on a profile (0 when it has no DMA engine)."""
    return int(hw.p("engines.dma.channels")) if hw.has("engines.dma") else 0


PARAMETERS = (
    worker_parameter("dma.channels", NAME, 16, "DMA channel", max_channels),
)


@hookimpl
def migpolicy_copy_engines():
    return (
        CopyEngine(
            name=NAME,
            summary="DMA offload: descriptor set-up per folio, channels, one completion per batch",
            worker_unit="channel",
            max_workers=max_channels,
            available=lambda: False,
            modelled_only="user space cannot drive a DMA engine here; dma figures are modelled",
            workers_param="dma.channels",
            cache_resident=lambda params: 0.0,  # the engine writes memory, not the CPU's cache
        ),
    )


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


def price_dma(batches, hw, channels: np.ndarray) -> np.ndarray:
    """Cost rows for copying each batch over ``channels[i]`` DMA channels.

    Descriptor work (per folio, per base page of a PTE-mapped folio) spreads
    over the active channels; the bytes flow at a soft minimum of the channels',
    the engines' (``channels_per_engine`` channels share one engine's data path)
    and the whole DMA block's bandwidth. The channels work on descriptors while
    data moves: their time is a soft maximum of the two, with exponent
    ``engines.dma.overlap`` (RFC V3 shows it: a second channel nearly doubles
    PTE-mapped folios, whose per-page work dominates, but adds 14% to 2 MiB
    THPs, whose bytes hit the shared engine's bandwidth).
    """
    p = hw.p
    folios = batches.folios
    pte_mapped = (folios["flags"] & PMD_MAPPED) == 0
    pages = np.where(pte_mapped, np.maximum(folios["size"] // hw.base_page, 1), 0)
    n = batches.nfolios.astype(float)
    nbytes = batches.nbytes.astype(float)
    active = np.minimum(np.minimum(channels, p("engines.dma.channels")), n)
    engines = np.ceil(active / p("engines.dma.channels_per_engine"))
    descriptor_s = (
        n * p("engines.dma.desc_ns") * ns + batches.per_batch(pages) * p("engines.dma.pte_ns") * ns
    ) / active
    bandwidth = soft_min(
        [active * p("engines.dma.channel_gbps"), engines * p("engines.dma.engine_gbps"),
         p("engines.dma.total_gbps")],
        p("engines.dma.saturation"),
    )
    channel_s = soft_max([descriptor_s, nbytes / (bandwidth * 1e9)], p("engines.dma.overlap"))
    cpu = n * p("engines.dma.prep_ns") * ns + p("engines.dma.completion_ns") * ns
    return cost_rows(batches, wall_s=cpu + channel_s, cpu_s=cpu, engine_s=channel_s * active)


@hookimpl
def migpolicy_copy(batches, engine, hw, params):
    if engine != NAME:
        return None
    if not hw.has("engines.dma"):
        return None
    return price_dma(batches, hw, batches.workers)


@hookimpl
def migpolicy_kernel_settings(params):
    if params["engine"] not in (NAME, "auto"):
        return None
    out = [KernelSetting("offload", "copy offload (RFC V3): DMA channels",
                         params["dma.channels"], ("dma.channels",), OFFLOAD_NOTE)]
    if params["engine"] == NAME:
        out.append(KernelSetting("offload", "copy offload (RFC V3): engine",
                                 "DMA offload (AMD PTDMA in the published runs)", ("engine",),
                                 OFFLOAD_NOTE))
    return out
