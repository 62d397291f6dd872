"""Per-epoch figures kept in a bounded number of bins, for the plots over time.

A replay of 10^6 epochs must not keep 10^6 rows: the timeline sums epochs
into at most ``2 * bins`` bins and, when it runs out, merges neighbouring
bins pairwise (each bin then covers twice as many epochs). Values may arrive
late for an epoch (migration costs come after the windowed pricing); they
land in the bin that covers the epoch now.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIELDS", "Timeline"]

#: What each bin sums.
FIELDS = ("accesses", "hits", "access_s", "migration_s", "overhead_s", "promoted", "demoted")


class Timeline:
    """Sums of :data:`FIELDS` over bins of ``width`` consecutive epochs."""

    def __init__(self, bins: int = 512) -> None:
        self.bins = bins
        self.width = 1
        self.data = np.zeros((len(FIELDS), 2 * bins))
        self.used = 0
        self._column = {name: i for i, name in enumerate(FIELDS)}

    def add(self, epoch: int, **values: float) -> None:
        """Add ``values`` (field → amount) to the bin of ``epoch``."""
        slot = epoch // self.width
        while slot >= self.data.shape[1]:
            self._fold()
            slot = epoch // self.width
        self.used = max(self.used, slot + 1)
        for name, value in values.items():
            self.data[self._column[name], slot] += value

    def _fold(self) -> None:
        self.data = np.concatenate(
            (self.data[:, 0::2] + self.data[:, 1::2], np.zeros_like(self.data[:, : self.bins])),
            axis=1)
        self.width *= 2
        self.used = -(-self.used // 2)

    def as_dict(self) -> dict[str, list[float]]:
        """Field → one value per bin, plus ``epoch`` (the first epoch of each bin)."""
        out = {"epoch": [i * self.width for i in range(self.used)]}
        for name, row in zip(FIELDS, self.data[:, : self.used], strict=True):
            out[name] = [float(v) for v in row]
        return out
