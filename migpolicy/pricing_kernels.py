"""The pricing's passes over per-folio arrays, compiled with numba.

Each function replaces a chain of numpy passes (one per field of a 64-byte
cost row, or per column of the folio array) with one loop, and gives the
numpy form's numbers to the last bit: sums over runs add in numpy's pairwise
order (:func:`pairwise_sum`, as ``np.add.reduceat`` does), sums into cells
add in row order (as ``np.bincount`` does). :mod:`migpolicy.compiled` says
when they run; the checks among them only answer yes or no, and the numpy
form names what is wrong.

Cost rows are passed as two views of one buffer, ``(n, 8)`` float64 and
int64 words: the first four fields of :data:`~migpolicy.costs.COST_DTYPE`
are seconds, the last four counts (checked on import by :mod:`migpolicy.costs`).
Compiled on first use and cached beside this file.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "batch_tenant_bytes",
    "batches_fit",
    "cell_sums",
    "consecutive_batches",
    "cuts_are_bounds",
    "page_table_entries",
    "pairwise_sum",
    "request_epochs",
    "run_starts",
    "sum_cost_runs",
    "sum_runs",
    "tenant_table",
]

#: Float fields (seconds) and int fields (counts) of a cost row, as word columns.
_FLOATS, _INTS = 4, 4


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a, lo, n):
    """``a[lo:lo + n]`` summed in numpy's pairwise order (blocks of 128, eight lanes each)."""
    if n < 8:  # numpy starts from 0.0, which changes nothing but the sign of a zero
        res = a[lo]
        for i in range(lo + 1, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        whole = n - n % 8
        while i < whole:
            j = lo + i
            r0 += a[j]
            r1 += a[j + 1]
            r2 += a[j + 2]
            r3 += a[j + 3]
            r4 += a[j + 4]
            r5 += a[j + 5]
            r6 += a[j + 6]
            r7 += a[j + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return pairwise_sum(a, lo, half) + pairwise_sum(a, lo + half, n - half)


@numba.njit(cache=True, nogil=True)
def _run_sum(a, start, end):
    """``np.add.reduceat``'s sum of one run: its first value, plus the rest pairwise."""
    value = a[start]
    if end - start > 1:
        value += pairwise_sum(a, start + 1, end - start - 1)
    return value


@numba.njit(cache=True, nogil=True)
def sum_runs(values, starts):
    """``np.add.reduceat(values, starts)`` for ascending, distinct ``starts`` (0 first)."""
    m, n = starts.shape[0], values.shape[0]
    out = np.empty(m, dtype=values.dtype)
    for k in range(m):
        out[k] = _run_sum(values, starts[k], starts[k + 1] if k + 1 < m else n)
    return out


@numba.njit(cache=True, nogil=True)
def sum_cost_runs(floats, ints, starts, out_floats, out_ints):
    """Cost rows summed over the runs beginning at ``starts``, into the ``out`` rows."""
    m, n = starts.shape[0], floats.shape[0]
    for k in range(m):
        start, end = starts[k], starts[k + 1] if k + 1 < m else n
        for j in range(_FLOATS):
            out_floats[k, j] = _run_sum(floats[:, j], start, end)
        for j in range(_FLOATS, _FLOATS + _INTS):
            total = 0
            for r in range(start, end):
                total += ints[r, j]
            out_ints[k, j] = total


@numba.njit(cache=True, nogil=True)
def page_table_entries(size, flags, mapcount, mappings, shift, base_page, pmd_flag):
    """Entries one mapping of each folio uses (all its mappings with ``mappings``).

    One if PMD-mapped, else one per base page; ``shift`` is log2 of
    ``base_page`` when that is a power of two, else -1.
    """
    n = size.shape[0]
    out = np.empty(n, dtype=np.int64)
    for r in range(n):
        if flags[r] & pmd_flag:
            entries = 1
        else:
            entries = size[r] >> shift if shift >= 0 else size[r] // base_page
            entries = max(entries, 1)
        if mappings and mapcount[r] > 1:
            entries *= mapcount[r]
        out[r] = entries
    return out


@numba.njit(cache=True, nogil=True)
def consecutive_batches(epoch, src, dst, reason, max_folios):
    """Batch bounds: at most ``max_folios`` consecutive folios of one epoch, nodes and reason."""
    n = epoch.shape[0]
    bounds = np.empty(n + 1, dtype=np.int64)
    bounds[0] = 0
    count, begun = 1, 0
    for r in range(1, n):
        if (epoch[r] != epoch[r - 1] or src[r] != src[r - 1] or dst[r] != dst[r - 1]
                or reason[r] != reason[r - 1] or r - begun == max_folios):
            bounds[count] = r
            count += 1
            begun = r
    bounds[count] = n
    return bounds[:count + 1]


@numba.njit(cache=True, nogil=True)
def request_epochs(epoch, src, dst, known):
    """Where each epoch's folios begin, and every place a batch must end; ``None`` if malformed.

    Well formed: the folios are in epoch order and every node is one of
    ``known`` (a lookup table by node id). A batch must end before each
    folio whose epoch or node pair differs from the one before it (its
    *cut*).
    """
    n, top = epoch.shape[0], known.shape[0]
    starts = np.empty(n, dtype=np.int64)
    cuts = np.empty(n, dtype=np.int64)
    count = cut = 0
    for r in range(n):
        if src[r] < 0 or src[r] >= top or not known[src[r]]:
            return None
        if dst[r] < 0 or dst[r] >= top or not known[dst[r]]:
            return None
        if r == 0:
            starts[0] = 0
            count = 1
        elif epoch[r] != epoch[r - 1]:
            if epoch[r] < epoch[r - 1]:
                return None
            starts[count] = cuts[cut] = r
            count += 1
            cut += 1
        elif src[r] != src[r - 1] or dst[r] != dst[r - 1]:
            cuts[cut] = r
            cut += 1
    return starts[:count], cuts[:cut]


@numba.njit(cache=True, nogil=True)
def cuts_are_bounds(cuts, bounds):
    """Whether every cut (ascending) is one of the batch ``bounds`` (ascending)."""
    b = 0
    for c in range(cuts.shape[0]):
        while bounds[b] < cuts[c]:
            b += 1
        if bounds[b] != cuts[c]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def batches_fit(epoch, src, dst, bounds):
    """Whether every batch lies within one epoch and between one pair of nodes."""
    for b in range(bounds.shape[0] - 1):
        first = bounds[b]
        for r in range(first + 1, bounds[b + 1]):
            if epoch[r] != epoch[first] or src[r] != src[first] or dst[r] != dst[first]:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def run_starts(values):
    """Where each run of equal values begins (0 first); empty for no values."""
    n = values.shape[0]
    out = np.empty(n, dtype=np.int64)
    count = 0
    for r in range(n):
        if r == 0 or values[r] != values[r - 1]:
            out[count] = r
            count += 1
    return out[:count]


@numba.njit(cache=True, nogil=True)
def tenant_table(tenants, low, high):
    """The distinct tenant ids in ``low..high`` (ascending), and each id's position among them.

    The positions are a table indexed by ``id - low``.
    """
    position = np.zeros(high - low + 1, dtype=np.int64)
    for r in range(tenants.shape[0]):
        position[tenants[r] - low] = 1
    ids = np.empty(high - low + 1, dtype=np.int64)
    distinct = 0
    for k in range(high - low + 1):
        if position[k]:
            ids[distinct] = k + low
            position[k] = distinct
            distinct += 1
    return ids[:distinct], position


@numba.njit(cache=True, nogil=True)
def cell_sums(values, group_starts, key, low, position, n_tenants, cells):
    """``values`` summed per cell ``group * n_tenants + tenant``, in row order as ``np.bincount``.

    A row's group is the run of ``group_starts`` it lies in (one run: totals);
    its tenant's position is ``position[key[row] - low]``.
    """
    sums = np.zeros(cells)
    groups, group = group_starts.shape[0], -1
    for r in range(values.shape[0]):
        while group + 1 < groups and group_starts[group + 1] <= r:
            group += 1
        sums[group * n_tenants + position[key[r] - low]] += values[r]
    return sums


@numba.njit(cache=True, nogil=True)
def batch_tenant_bytes(key, low, position, n_tenants, isolated, bounds, size):
    """Bytes (float64) and folios each tenant has in each batch, per ``batch * n_tenants + tenant``.

    The batches hold the isolated folios in order; ``size`` is theirs. A
    folio's tenant position is ``position[key[folio] - low]``.
    """
    n_batches = bounds.shape[0] - 1
    owned = np.zeros(n_batches * n_tenants)
    count = np.zeros(n_batches * n_tenants, dtype=np.int64)
    moved, batch = 0, 0
    for r in range(key.shape[0]):
        if not isolated[r]:
            continue
        while bounds[batch + 1] <= moved:
            batch += 1
        cell = batch * n_tenants + position[key[r] - low]
        owned[cell] += size[moved]
        count[cell] += 1
        moved += 1
    return owned, count
