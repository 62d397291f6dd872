"""The replay's per-epoch inner loops, compiled with numba.

A replay walks every event once and every touched page a few times per
epoch; as chains of numpy passes that cost about 40 passes over the epoch's
pages. Each function here is one fused loop instead. They reproduce the
numpy arithmetic they replace to the last bit: per-page weights are summed
in event order (as ``np.bincount`` does) and totals with numpy's own
pairwise summation (:func:`pairwise_sum`), so a replay's figures do not
depend on which of the two computed them (``tests/replay/test_pinned.py``).

Compiled on first use and cached beside this file (``cache=True``), so only
the first replay after installing pays the compilation (a few seconds).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["access_cost", "bounds_add", "page_runs", "pairwise_sum", "sort_keys"]

#: Below this many terms numpy sums with eight accumulators, above it splits in halves.
_BLOCK = 128


@numba.njit(cache=True, nogil=True)
def _block_sum(a, lo, n):
    """numpy's ``pairwise_sum`` on ``n <= 128`` terms: eight running sums, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    stop = lo + n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += a[i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a):
    """``a.sum()`` of a contiguous float64 array, bit for bit as numpy computes it.

    numpy halves a sum of more than 128 terms (the first half a multiple of
    8 terms) and adds the halves' sums. The halving is walked here with an
    explicit stack, not by recursion: numba cannot load a cached recursive
    function back safely.
    """
    n = a.shape[0]
    if n <= _BLOCK:
        return 0.0 + _block_sum(a, 0, n)
    starts = np.empty(64, dtype=np.int64)  # the halves being summed, as on a call stack
    sizes = np.empty(64, dtype=np.int64)
    done = np.zeros(64, dtype=np.int8)  # halves of each entry already summed: 0, 1 or 2
    sums = np.empty(64)  # finished sums waiting for their sibling
    top, ready = 0, 0
    starts[0], sizes[0] = 0, n
    while top >= 0:
        lo, size = starts[top], sizes[top]
        if size <= _BLOCK:
            sums[ready] = _block_sum(a, lo, size)
            ready += 1
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        if done[top] == 2:
            ready -= 1
            sums[ready - 1] = sums[ready - 1] + sums[ready]
            done[top] = 0
            top -= 1
            continue
        first = done[top] == 0
        done[top] += 1
        top += 1
        starts[top] = lo if first else lo + half
        sizes[top] = half if first else size - half
        done[top] = 0
    return 0.0 + sums[0]


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
    accesses = np.empty(n)
    writes = np.empty(n)
    index_mask = (1 << (shift - 1)) - 1
    d = -1
    last = -1
    total = wrote = 0.0
    for i in range(n):
        key = np.int64(keys[i])
        p = key >> shift
        w = weight[(key >> 1) & index_mask] * scale
        if p != last:
            if d >= 0:
                accesses[d], writes[d] = total, wrote
            d += 1
            pages[d] = last = p
            total = wrote = 0.0
        total += w
        wrote += w if key & 1 else 0.0
    if d >= 0:
        accesses[d], writes[d] = total, wrote
    return pages[: d + 1], accesses[: d + 1], writes[: d + 1]


@numba.njit(cache=True, nogil=True)
def access_cost(pages, accesses, writes, node_of, fast, load_fast, store_fast, load_slow,
                store_slow):
    """Access time (s) of an epoch's counts with pages on ``node_of``, and its fast-tier hits.

    Reads (accesses - writes) cost the load latency and writes the store
    latency of the page's tier; the three totals are numpy's sums of the
    per-page terms.
    """
    n = pages.shape[0]
    loads = np.empty(n)
    stores = np.empty(n)
    hits = np.empty(n)
    m = 0
    for j in range(n):
        reads = accesses[j] - writes[j]
        if node_of[pages[j]] == fast:
            loads[j] = reads * load_fast
            stores[j] = writes[j] * store_fast
            hits[m] = accesses[j]
            m += 1
        else:
            loads[j] = reads * load_slow
            stores[j] = writes[j] * store_slow
    return pairwise_sum(loads) + pairwise_sum(stores), pairwise_sum(hits[:m])


@numba.njit(cache=True, nogil=True)
def bounds_add(pages, accesses, writes, totals, node_of, fast, load_fast, store_fast,
               load_slow, store_slow):
    """Add an epoch to the per-page totals; the oracle's epoch if all fit, and never migrating's.

    ``totals[page]`` holds the page's reads and writes so far. Per page:
    reads = accesses - writes, slow-tier time ``slow``, ``gain`` = slow -
    fast-tier time, and the fast-tier time as ``slow - gain``: the terms
    :class:`~migpolicy.replay.bounds.Bounds` sums. Returns the hits and
    access time with every page of the epoch fast, and the access time with
    the pages on ``node_of`` (what :func:`access_cost` gives).
    """
    n = pages.shape[0]
    both = np.empty(n)
    fast_s = np.empty(n)
    loads = np.empty(n)
    stores = np.empty(n)
    for j in range(n):
        p = pages[j]
        reads = accesses[j] - writes[j]
        totals[p, 0] += reads
        totals[p, 1] += writes[j]
        slow = reads * load_slow + writes[j] * store_slow
        gain = slow - (reads * load_fast + writes[j] * store_fast)
        both[j] = reads + writes[j]
        fast_s[j] = slow - gain
        on_fast = node_of[p] == fast
        loads[j] = reads * (load_fast if on_fast else load_slow)
        stores[j] = writes[j] * (store_fast if on_fast else store_slow)
    return (pairwise_sum(both), pairwise_sum(fast_s),
            pairwise_sum(loads) + pairwise_sum(stores))
