"""The hardware-profile schema: which sections and keys exist, and what each must hold.

One table (:data:`SECTIONS`) lists every parameter of every section with its
check, so the loader, ``hw show`` and the fitter agree on what a profile is.
Every numeric parameter carries provenance (see :mod:`migpolicy.hardware.profile`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NODE_KEYS", "OPTIONAL_KEYS", "PROVENANCE_KINDS", "SECTIONS", "Check"]

PROVENANCE_KINDS = {
    "measured": ("host", "date", "command"),
    "fitted": ("source", "date", "command"),
    "assumed": ("reason",),
}


@dataclass(frozen=True)
class Check:
    """A parameter's rule: a predicate on its value, the phrase for the error, its unit."""

    ok: Callable[[float], bool]
    expected: str
    unit: str
    help: str


def _positive(unit: str, help: str) -> Check:
    return Check(lambda v: v > 0, "a positive number", unit, help)


def _nonneg(unit: str, help: str) -> Check:
    return Check(lambda v: v >= 0, "a number >= 0", unit, help)


def _count(unit: str, help: str) -> Check:
    return Check(lambda v: v >= 1 and float(v).is_integer(), "a whole number >= 1", unit, help)


def _fraction(help: str) -> Check:
    return Check(lambda v: 0 < v <= 1, "a number in (0, 1]", "", help)


#: Keys of each node entry that are parameters (with provenance).
NODE_KEYS: dict[str, Check] = {
    "capacity": _positive("bytes", "memory capacity (sizes like 256GiB accepted)"),
    "load_latency_ns": _positive("ns", "idle load-to-use latency from a local core"),
    "store_latency_ns": _positive("ns", "store latency as seen by an application"),
    "bandwidth_gbps": _positive("GB/s", "peak read+write bandwidth of the node"),
    "ccds": Check(lambda v: v >= 0 and float(v).is_integer(), "a whole number >= 0", "",
                  "LLC domains (CCDs) with cores on this node; 0 for a CPU-less node"),
    "cores_per_ccd": _count("", "physical cores per LLC domain"),
    "smt": _count("", "hardware threads per core"),
}

#: section path → parameter → check.
SECTIONS: dict[str, dict[str, Check]] = {
    "stages.isolate": {
        "folio_ns": _nonneg("ns", "isolate from LRU, lock, unmap set-up, per folio"),
        "pte_ns": _nonneg("ns", "unmap cost per page-table entry per mapping"),
        "retry_ns": _nonneg("ns", "cost of one retry of a busy folio"),
        "max_retries": _count("", "passes before a busy folio fails (kernel: 10)"),
    },
    "stages.batch": {
        "batch_ns": _nonneg("ns", "per batch: set-up and the one batched TLB flush"),
    },
    "stages.remap": {
        "folio_ns": _nonneg("ns", "restore mappings, free source, per folio"),
        "pte_ns": _nonneg("ns", "remap cost per page-table entry per mapping"),
    },
    "memory": {
        "thread_gbps": _positive("GB/s", "copy bandwidth of one core, unloaded"),
        "ccd_gbps": _positive("GB/s", "copy bandwidth one LLC domain (CCD) can sustain"),
        "link_gbps": _positive("GB/s", "copy bandwidth from a node to a higher-numbered one"),
        "reverse_link_gbps": _positive("GB/s", "copy bandwidth from a node to a lower-numbered "
                                       "one (default: link_gbps, a symmetric link)"),
        "saturation": _positive("", "sharpness of the soft minimum over the caps (higher: harder)"),
        "pull_factor": _positive("", "bandwidth factor when workers sit on the destination node"),
        "nt_factor": _positive("", "copy bandwidth with non-temporal stores relative to cached "
                               "stores (no read-for-ownership of the destination)"),
    },
    "engines.cpu": {
        "folio_ns": _nonneg("ns", "per-folio cost of folio_copy() beyond the bytes"),
    },
    "engines.mt": {
        "max_threads": _count("", "most worker threads the engine may use"),
        "thread_start_ns": _nonneg("ns", "per worker per batch: queue the work, wake, join"),
    },
    "engines.dma": {
        "channels": _count("", "DMA channels available"),
        "prep_ns": _nonneg("ns", "CPU time to prepare one descriptor (per folio)"),
        "desc_ns": _nonneg("ns", "channel time per descriptor"),
        "pte_ns": _nonneg("ns", "channel time per base page of a PTE-mapped folio"),
        "channels_per_engine": _count("", "channels sharing one engine's data path"),
        "channel_gbps": _positive("GB/s", "bandwidth of one channel"),
        "engine_gbps": _positive("GB/s", "bandwidth of one engine (shared by its channels)"),
        "total_gbps": _positive("GB/s", "bandwidth of all channels together"),
        "saturation": _positive("", "sharpness of the soft minimum over the DMA caps"),
        "completion_ns": _nonneg("ns", "per batch: wait for and handle the completion"),
        "overlap": _positive("", "how far a channel overlaps descriptor work with data "
                             "movement: the exponent of a soft maximum of the two (1: none, "
                             "they add; higher: the slower alone)"),
    },
    "engines.dsa": {
        "devices": _count("", "DSA devices (one per die on Sapphire Rapids)"),
        "engines_per_device": _count("", "processing engines of one device"),
        "batch_size": _count("", "work descriptors per batch descriptor (hardware limit 1024)"),
        "submit_ns": _nonneg("ns", "CPU time to submit one (batch) descriptor: ENQCMD/MOVDIR64B"),
        "prep_ns": _nonneg("ns", "CPU time to write one work descriptor (per folio)"),
        "desc_ns": _nonneg("ns", "engine time per work descriptor, beyond its bytes"),
        "engine_gbps": _positive("GB/s", "copy bandwidth of one engine"),
        "device_gbps": _positive("GB/s", "copy bandwidth of one device (its fabric port)"),
        "saturation": _positive("", "sharpness of the soft minimum over the DSA caps"),
        "completion_ns": _nonneg("ns", "per batch: poll or take the completion record"),
    },
    "engines.sdxi": {
        "functions": _count("", "SDXi functions (descriptor rings) usable in parallel"),
        "prep_ns": _nonneg("ns", "CPU time to write one 64-byte descriptor into a ring"),
        "doorbell_ns": _nonneg("ns", "CPU time per batch: one doorbell write for the ring"),
        "desc_ns": _nonneg("ns", "function time per descriptor, beyond its bytes"),
        "function_gbps": _positive("GB/s", "copy bandwidth of one function"),
        "total_gbps": _positive("GB/s", "copy bandwidth of the whole device"),
        "saturation": _positive("", "sharpness of the soft minimum over the SDXi caps"),
        "completion_ns": _nonneg("ns", "per batch: wait for and handle the completion"),
    },
    "engines.gpu": {
        "streams": _count("", "copy engines / streams usable in parallel"),
        "launch_ns": _nonneg("ns", "per batch: launch of the batched copy"),
        "folio_ns": _nonneg("ns", "CPU time per folio to build the copy list"),
        "stream_gbps": _positive("GB/s", "bandwidth of one copy engine"),
        "link_gbps": _positive("GB/s", "host-to-device link bandwidth"),
        "d2h_link_gbps": _positive("GB/s", "device-to-host link bandwidth (default: link_gbps)"),
        "pageable_factor": _fraction("bandwidth factor for pageable (unpinned) memory"),
    },
}

#: Keys a profile may omit, per section: key → the key whose value (and provenance) it
#: takes, or a default value and the reason it is assumed. A link measured in one direction
#: only is symmetric until the other is measured.
OPTIONAL_KEYS: dict[str, dict[str, str | tuple[float, str]]] = {
    "memory": {
        "reverse_link_gbps": "link_gbps",
        "nt_factor": (1.5, "a copy with cached stores moves three bytes of memory traffic per "
                           "byte copied (read the source, read the destination for ownership, "
                           "write it back), one with non-temporal stores two: 3/2 where memory "
                           "bandwidth bounds the copy (benchmarks/nt_copy.py measures the ratio "
                           "on a machine)"),
    },
    "engines.dma": {
        "overlap": (1.0, "no overlap unless a fit shows it: a channel finishes a transfer's "
                         "descriptor work (fetch, address translation per page) before "
                         "moving its bytes"),
    },
    "engines.gpu": {"d2h_link_gbps": "link_gbps"},
}
