"""The placement's per-epoch check of a policy's requests, compiled with numba.

:meth:`migpolicy.placement.Placement.check` runs every epoch for every policy;
as a chain of numpy calls it cost about 60 us each time, whatever the number
of requests. :func:`requests_fit` answers whether the requests keep every
invariant in one loop; only when they do not does the check run its numpy
form, which names the first broken invariant. Imported when a placement first
checks requests, so commands that never replay never load numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["requests_fit"]


@numba.njit(cache=True, nogil=True)
def requests_fit(pages, dst, node_of, page_bytes, nodes, used, capacity):
    """Whether moving ``pages`` to ``dst`` (in order) keeps the placement's invariants.

    Every page exists, every destination is one of ``nodes`` (whose bytes in
    use and capacities are ``used`` and ``capacity``), no page comes twice or
    goes to the node it is on, and after every prefix of the requests no node
    holds more than its capacity.
    """
    n = pages.shape[0]
    count = node_of.shape[0]
    slot = np.empty(n, dtype=np.int64)  # each request's destination, as an index into nodes
    for i in range(n):
        if pages[i] < 0 or pages[i] >= count:
            return False
        slot[i] = -1
        for k in range(nodes.shape[0]):
            if nodes[k] == dst[i]:
                slot[i] = k
        if slot[i] < 0 or node_of[pages[i]] == dst[i]:
            return False
    ordered = np.sort(pages)
    for i in range(1, n):
        if ordered[i] == ordered[i - 1]:
            return False
    held = used.copy()
    for i in range(n):
        size = page_bytes[pages[i]]
        for k in range(nodes.shape[0]):
            if nodes[k] == node_of[pages[i]]:
                held[k] -= size
        held[slot[i]] += size
        for k in range(nodes.shape[0]):
            if held[k] > capacity[k]:
                return False
    return True
