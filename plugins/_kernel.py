"""Shared by the plugins' kernel settings: the tier nodes of a profile, the RFC offload note."""

from __future__ import annotations

from migpolicy.contract import InputError, NoKernelEquivalent, Profile
from migpolicy.hardware.profile import Node

#: Where a copy-offload setting comes from: the RFC series names no knob in what was published.
OFFLOAD_NOTE = ("a setting of the RFC series' copy offload (RFC V3, linux-mm 2025-09); the "
                "published material does not name its knob")


def tier_nodes(hw: Profile) -> tuple[Node, Node]:
    """The node with the lowest access latency (ties: lowest id) and the next one."""
    ranked = sorted(hw.nodes.values(),
                    key=lambda n: (n["load_latency_ns"] + n["store_latency_ns"], n.id))
    if len(ranked) < 2:
        raise InputError(f"profile {hw.name} has one node; tiered-memory settings need a "
                         "fast and a slow node (try --hw dram-cxl)")
    return ranked[0], ranked[1]


def no_offload(params, engine: str, workers_param: str, what: str
               ) -> tuple[NoKernelEquivalent, ...] | None:
    """Why an engine the RFC series' offload does not drive has no setting (when it is in use)."""
    if params["engine"] not in (engine, "auto"):
        return None
    keys = (workers_param,) + (("engine",) if params["engine"] == engine else ())
    return (NoKernelEquivalent(keys, "the RFC series' published offload drives CPU threads and "
                               f"a DMA engine (AMD PTDMA); it has no setting for {what}"),)
