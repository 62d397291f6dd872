"""The replay's per-epoch inner loops, compiled with numba.

A replay walks every event once and every touched page a few times per
epoch; as chains of numpy passes that cost about 40 passes over the epoch's
pages. Each function here is one fused loop instead. Per-page figures are
the numpy arithmetic they replace to the last bit (per-page weights are
summed in event order, as ``np.bincount`` does). An epoch's totals (access
time, hits, the bounds' sums) are summed in the loop, in page order, rather
than written out term by term for numpy's pairwise sum: that cost about 10%
of a replay, and the two orders differ only in the last digits (by at most
2 parts in 10^12 on the replays pinned in ``tests/replay/test_pinned.py``,
10^-13 on their totals).

Compiled on first use and cached beside this file (``cache=True``), so only
the first replay after installing pays the compilation (a few seconds).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["access_cost", "bounds_add", "epoch_cuts", "page_runs", "sort_keys"]


@numba.njit(cache=True, nogil=True)
def epoch_cuts(t, t0, epoch_ns):
    """Where the epoch number ``(max(t[:i+1]) - t0) // epoch_ns`` changes in the times ``t``.

    Returns the indices where a run of one epoch number starts (0 first) and
    each run's number. An event earlier than one before it (a straggler)
    joins the epoch of the latest event so far. Times in order (the usual
    case, checked in one pass) are cut by binary search of each next epoch's
    start; otherwise one comparison per event finds where the running
    maximum reaches it.
    """
    n = t.shape[0]
    ordered = True
    for i in range(1, n):
        ordered &= t[i] >= t[i - 1]
    starts = np.empty(n, dtype=np.int64)
    numbers = np.empty(n, dtype=np.int64)
    runs = 0
    if ordered:
        i = 0
        while True:
            number = (t[i] - t0) // epoch_ns
            starts[runs], numbers[runs] = i, number
            runs += 1
            bound = t0 + (number + 1) * epoch_ns
            if t[n - 1] < bound:
                return starts[:runs], numbers[:runs]
            i = np.searchsorted(t, bound)
    latest = t[0]
    number = (latest - t0) // epoch_ns
    bound = t0 + (number + 1) * epoch_ns
    starts[0], numbers[0] = 0, number
    runs = 1
    for i in range(1, n):
        if t[i] > latest:
            latest = t[i]
            if latest >= bound:
                number = (latest - t0) // epoch_ns
                bound = t0 + (number + 1) * epoch_ns
                starts[runs], numbers[runs] = i, number
                runs += 1
    return starts[:runs], numbers[:runs]


@numba.njit(cache=True, nogil=True)
def sort_keys(page, of_dense, remap, op, write_bit, weight, first_weight, shift, keys, first):
    """One key per event into ``keys``, so that sorting them groups the events by page.

    The page (renumbered through ``of_dense`` when ``remap``) sits above bit
    ``shift``, whether the event wrote in bit 0, and with ``shift`` > 1 the
    event's index in the epoch (``first`` + its index here) in between: then
    each page's events keep their order. Returns whether every weight equals
    ``first_weight`` (with ``shift`` 1 the keys must otherwise be made again
    with the index: the sums depend on the order).
    """
    same = True
    for i in range(page.shape[0]):
        p = of_dense[page[i]] if remap else page[i]
        index = (first + i) << 1 if shift > 1 else 0
        keys[i] = (p << shift) | index | (1 if op[i] & write_bit else 0)
        same &= weight[i] == first_weight
    return same


@numba.njit(cache=True, nogil=True)
def page_runs(keys, shift, weight, scale):
    """Distinct pages of sorted :func:`sort_keys` and the sums of their events' weights.

    Each event adds ``weight * scale`` to its page's accesses, and to its
    writes when it wrote (a read adds 0.0, which changes no sum). With
    ``shift`` > 1 the keys hold each event's index and the sums run in event
    order, as ``np.bincount`` sums; without, every weight is ``weight[0]``
    and the order cannot matter.
    """
    n = keys.shape[0]
    pages = np.empty(n, dtype=np.int64)
    accesses = np.zeros(n)
    writes = np.zeros(n)
    index_mask = (1 << (shift - 1)) - 1
    d = -1
    last = -1
    for i in range(n):  # no branch on a new page: they come unpredictably
        key = np.int64(keys[i])
        p = key >> shift
        w = weight[(key >> 1) & index_mask] * scale
        d += p != last
        last = p
        pages[d] = p
        accesses[d] += w
        writes[d] += w if key & 1 else 0.0
    return pages[: d + 1], accesses[: d + 1], writes[: d + 1]


@numba.njit(cache=True, nogil=True)
def access_cost(pages, accesses, writes, node_of, fast, load_fast, store_fast, load_slow,
                store_slow):
    """An epoch's access time with pages on ``node_of``, and its fast-tier hits.

    Per page: reads (accesses - writes) times the load latency of its tier,
    writes times the store latency. Returns the load terms' sum plus the
    store terms' sum, and the sum of the accesses of the pages on ``fast``,
    each summed in page order.
    """
    loads = 0.0
    stores = 0.0
    hits = 0.0
    for j in range(pages.shape[0]):
        reads = accesses[j] - writes[j]
        if node_of[pages[j]] == fast:
            loads += reads * load_fast
            stores += writes[j] * store_fast
            hits += accesses[j]
        else:
            loads += reads * load_slow
            stores += writes[j] * store_slow
    return loads + stores, hits


@numba.njit(cache=True, nogil=True)
def bounds_add(pages, accesses, writes, totals, node_of, fast, load_fast, store_fast,
               load_slow, store_slow):
    """Add an epoch to the per-page totals; the oracle's epoch and never migrating's time.

    ``totals[page]`` holds the page's reads and writes so far. Per page:
    reads = accesses - writes, slow-tier time ``slow``, ``gain`` = slow -
    fast-tier time. Returns the sums of reads + writes and of ``slow - gain``
    (the oracle's hits and access time when every page of the epoch is fast)
    and the access time with the pages on ``node_of``, summed as
    :func:`access_cost` sums it.
    """
    both = 0.0
    fast_s = 0.0
    loads = 0.0
    stores = 0.0
    for j in range(pages.shape[0]):
        p = pages[j]
        reads = accesses[j] - writes[j]
        totals[p, 0] += reads
        totals[p, 1] += writes[j]
        slow = reads * load_slow + writes[j] * store_slow
        gain = slow - (reads * load_fast + writes[j] * store_fast)
        both += reads + writes[j]
        fast_s += slow - gain
        on_fast = node_of[p] == fast
        loads += reads * (load_fast if on_fast else load_slow)
        stores += writes[j] * (store_fast if on_fast else store_slow)
    return both, fast_s, loads + stores
