"""The analytic copy-bandwidth model shared by the CPU copy engines.

Bandwidth of ``T`` copy threads is a soft minimum over the caps the published
measurements show: ``T`` times one core's bandwidth, the LLC domains (CCDs)
the threads occupy times a domain's bandwidth (so spreading threads across
CCDs beats filling one first), and the node-to-node link (so gains flatten
past a handful of threads). ``saturation`` sets how sharply the smallest cap
takes over. The link may differ by direction (``link_gbps`` towards a
higher-numbered node, ``reverse_link_gbps`` back, as NVLink-C2C does:
about 375 GB/s host-to-GPU and 297 GPU-to-host measured on GH200).
Workers on the destination (pull) run at ``pull_factor`` only where they
really sit on other CPUs than the source's. Everything is vectorised over
batches.
"""

from __future__ import annotations

import numpy as np

from migpolicy.hardware.profile import Node, Profile

__all__ = [
    "STORES",
    "cache_resident",
    "copy_bandwidth_gbps",
    "free_threads",
    "link_gbps",
    "soft_max",
    "soft_min",
    "worker_node",
]

PLACEMENTS = ("spread", "fill")
SIDES = ("push", "pull")
#: Store modes of a CPU copy: ordinary (cached) stores, or non-temporal ones that
#: write around the cache (MOVNT* on x86, STNP on arm64).
STORES = ("cached", "nt")


def soft_min(caps: list, k: float) -> np.ndarray:
    """Smooth minimum of positive ``caps``: ``(sum c^-k)^(-1/k)``."""
    total = sum(np.asarray(c, dtype=float) ** -k for c in caps)
    return total ** (-1.0 / k)


def soft_max(times: list, k: float) -> np.ndarray:
    """Smooth maximum of non-negative ``times``: ``(sum t^k)^(1/k)``."""
    total = sum(np.asarray(t, dtype=float) ** k for t in times)
    return total ** (1.0 / k)


def worker_node(hw: Profile, src: int, dst: int, side: str) -> Node:
    """The node whose cores run the copy: the source (push) or destination (pull).

    A CPU-less node (CXL, GPU memory) lends the copy to the first node with cores.
    """
    node = hw.node(src if side == "push" else dst)
    return node if node.cores else hw.cpu_nodes[0]


def free_threads(node: Node, load: float) -> float:
    """Hardware threads on ``node`` not busy with other work, at least one."""
    return max(1.0, node.cores * node["smt"] * (1.0 - load))


def copy_bandwidth_gbps(
    hw: Profile,
    threads: np.ndarray,
    *,
    src: int,
    dst: int,
    placement: str = "spread",
    side: str = "push",
    load: float = 0.0,
    store: str = "cached",
) -> np.ndarray:
    """Aggregate copy bandwidth (GB/s) of ``threads`` workers moving ``src`` → ``dst``.

    With non-temporal stores (``store="nt"``) the destination is not read for
    ownership first: every cap carries a third less traffic per byte copied,
    the profile's ``memory.nt_factor``.
    """
    node = worker_node(hw, src, dst, side)
    per_ccd = node["cores_per_ccd"] * node["smt"]
    t = np.minimum(np.asarray(threads, dtype=float), free_threads(node, load))
    if placement == "spread":
        ccds = np.minimum(t, node["ccds"])
    else:
        ccds = np.minimum(np.ceil(t / per_ccd), node["ccds"])
    link = link_gbps(hw, src, dst)
    bw = soft_min(
        [t * hw.p("memory.thread_gbps"), ccds * hw.p("memory.ccd_gbps"), link],
        hw.p("memory.saturation"),
    )
    # Pulling differs from pushing only where the two sides run on different CPUs:
    # with a CPU-less node (CXL, GPU memory) both directions run on the same cores.
    pulled = side == "pull" and node.id != worker_node(hw, src, dst, "push").id
    nt = hw.p("memory.nt_factor") if store == "nt" else 1.0
    return bw * (hw.p("memory.pull_factor") if pulled else 1.0) * nt


def link_gbps(hw: Profile, src: int, dst: int) -> float:
    """Copy bandwidth (GB/s) of the path from node ``src`` to node ``dst``, in that direction.

    Between nodes: ``memory.link_gbps`` towards a higher-numbered node,
    ``memory.reverse_link_gbps`` back. Within a node a copy reads and writes
    the same memory: half the node's bandwidth.
    """
    if src == dst:
        return hw.node(src)["bandwidth_gbps"] / 2.0
    return hw.p("memory.link_gbps" if src < dst else "memory.reverse_link_gbps")


def cache_resident(store: str) -> float:
    """Fraction of the copied bytes a CPU copy leaves in the initiating CPU's cache.

    A cached copy leaves the destination resident (its next accesses hit)
    and evicts as much of what the initiator had cached; a non-temporal copy
    writes around the cache: the destination's next accesses miss, and
    nothing is evicted. Replay charges one or the other.
    """
    return 1.0 if store == "cached" else 0.0
