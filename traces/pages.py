"""Dense page indices assigned on the fly, in first-touch order.

Replay counts accesses per page with ``np.bincount``; that needs pages as
dense indices 0..n-1, not as sparse addresses. :class:`PageTable` maps page
numbers to dense indices chunk by chunk: a hash-based dictionary encoding of
the chunk (pyarrow) finds its distinct pages in first-occurrence order, and a
sorted array of the pages seen so far finds their indices. Memory grows with
the distinct pages only, never with the trace's length.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PageTable"]


class PageTable:
    """Page number → dense index, in the order pages are first touched."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)  # page numbers seen, sorted
        self._ids = np.empty(0, dtype=np.int64)  # dense index of each key
        self._numbers: list[np.ndarray] = []  # page numbers in dense order, appended
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def numbers(self) -> np.ndarray:
        """The page number of each dense index (index ``i`` → ``numbers()[i]``)."""
        if len(self._numbers) > 1:
            self._numbers = [np.concatenate(self._numbers)]
        return self._numbers[0] if self._numbers else np.empty(0, dtype=np.int64)

    def densify(self, pages: np.ndarray) -> np.ndarray:
        """Return the dense index of every page number in ``pages`` (new ones appended)."""
        if len(pages) == 0:
            return np.empty(0, dtype=np.int64)
        encoded = pc.dictionary_encode(pa.array(pages, type=pa.int64()))
        distinct = encoded.dictionary.to_numpy()  # first-occurrence order
        codes = encoded.indices.to_numpy()
        pos = np.searchsorted(self._keys, distinct)
        clipped = np.minimum(pos, max(len(self._keys) - 1, 0))
        known = (pos < len(self._keys)) & (self._keys[clipped] == distinct) if self._size else (
            np.zeros(len(distinct), dtype=bool))
        ids = np.empty(len(distinct), dtype=np.int64)
        ids[known] = self._ids[clipped[known]]
        new = ~known
        count = int(new.sum())
        if count:
            ids[new] = np.arange(self._size, self._size + count)
            by_value = np.argsort(distinct[new], kind="stable")
            self._keys = np.insert(self._keys, pos[new][by_value], distinct[new][by_value])
            self._ids = np.insert(self._ids, pos[new][by_value], ids[new][by_value])
            self._numbers.append(distinct[new])
            self._size += count
        return ids[codes]
