"""The placement policies' per-epoch loops over the pages an epoch touched, compiled with numba.

Each replaces a chain of numpy passes with one loop and gives the same
numbers to the last bit (``tests/plugins/test_placement_loops.py``). The
policies import this module when they first act, so commands that never
replay never load numba; compiled code is cached beside this file.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["hint_faults", "remember", "stable_order"]


@numba.njit(cache=True, nogil=True)
def hint_faults(pages, accesses, scan_time, node_of, fast, start_ns, length_ns, threshold_ns):
    """The hint faults of an epoch's ``pages``: the hot slow-tier ones, their first access time.

    A page the scanner marked (``scan_time`` >= 0) faults on its first
    access, assumed spread evenly: at ``start + length / (accesses + 1)``;
    the fault clears the mark. It is hot when the time since the mark is
    under the threshold. Returns the hot pages off the fast node, their
    fault times, and the number of faults.
    """
    hot = np.empty(pages.shape[0], dtype=np.int64)
    first = np.empty(pages.shape[0])
    faults = found = 0
    for j in range(pages.shape[0]):
        p = pages[j]
        if scan_time[p] < 0:
            continue
        faults += 1
        fault_ns = start_ns + length_ns / (accesses[j] + 1.0)
        if fault_ns - scan_time[p] < threshold_ns and node_of[p] != fast:
            hot[found] = p
            first[found] = fault_ns
            found += 1
        scan_time[p] = -1.0
    return hot[:found], first[:found], faults


@numba.njit(cache=True, nogil=True)
def stable_order(values, most):
    """``np.argsort(values, kind="stable")`` by counting, when ``values`` take few values.

    Fault times take one value per distinct access count, a handful on most
    traces, where a comparison sort would cost far more. Returns the order
    and ``True``, or ``False`` as soon as there are more than ``most``
    distinct values (sort them then).
    """
    n = values.shape[0]
    distinct = np.empty(most)
    counts = np.zeros(most, dtype=np.int64)
    which = np.empty(n, dtype=np.int64)
    found = 0
    for i in range(n):
        k = 0
        while k < found and distinct[k] != values[i]:
            k += 1
        if k == found:
            if found == most:
                return which, False
            distinct[found] = values[i]
            found += 1
        which[i] = k
        counts[k] += 1
    start = np.empty(found, dtype=np.int64)
    position = 0
    for k in np.argsort(distinct[:found]):
        start[k] = position
        position += counts[k]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[start[which[i]]] = i
        start[which[i]] += 1
    return order, True


@numba.njit(cache=True, nogil=True)
def remember(pages, accesses, index, recency):
    """Epoch ``index`` touched ``pages``: that is their last access (``recency[page, 0]``);
    halve their access counts (``recency[page, 1]``) and add the epoch's."""
    for j in range(pages.shape[0]):
        recency[pages[j], 0] = index
        recency[pages[j], 1] = recency[pages[j], 1] * 0.5 + accesses[j]
