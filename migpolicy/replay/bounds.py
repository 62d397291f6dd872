"""The offline bounds of a replay: the best static placement and the per-epoch oracle.

Beside them, what never migrating costs: the access time with every page where
the initial placement put it, the reference of a replay's speed-up.

* **Static**: the pages that save the most access time over the whole run
  sit in the fast tier from start to end (nothing moves).
* **Oracle**: every epoch the pages that save the most in that epoch sit in
  the fast tier, moved there for free before the epoch starts.

Both fill the fast tier's page count, so no real policy beats the oracle's hit
ratio or access time (it knows the future and pays nothing). A page's saving
is its reads times the load-latency gap plus its writes times the
store-latency gap; when both gaps are equal that ranks pages by accesses, and
the same choice maximises the hit ratio.
"""

from __future__ import annotations

import numpy as np

from migpolicy.placement import Epoch
from migpolicy.replay import kernels
from migpolicy.replay.tiers import Tiers

__all__ = ["Bounds"]


class Bounds:
    """Accumulates both bounds and never migrating's access time, epoch by epoch.

    ``initial`` is the node of every page at the start (kept as it is).
    Memory: two floats per page (its reads and writes so far).
    """

    def __init__(self, tiers: Tiers, initial: np.ndarray) -> None:
        self.tiers = tiers
        self.initial = initial
        self.totals = np.zeros((len(initial), 2))
        self.oracle_hits = 0.0
        self.oracle_access_s = 0.0
        #: Access time so far had no page ever moved from ``initial``.
        self.never_migrate_s = 0.0
        f, s = tiers.fast, tiers.slow
        self._lat = (tiers.load_s[f], tiers.store_s[f], tiers.load_s[s], tiers.store_s[s])

    def add(self, epoch: Epoch) -> None:
        """Count the epoch into the static totals, place the oracle's pages, charge never
        migrating."""
        if len(epoch.pages) == 0:
            return
        load_f, store_f, load_s, store_s = self._lat
        both, fast_s, never = kernels.bounds_add(
            epoch.pages, epoch.accesses, epoch.writes, self.totals, self.initial,
            self.tiers.fast, load_f, store_f, load_s, store_s)
        self.never_migrate_s += never
        if self.tiers.fast_pages < len(epoch.pages):  # not all of them fit: choose
            hits, seconds = self._best(epoch.accesses - epoch.writes, epoch.writes)
        else:
            hits, seconds = both, fast_s
        self.oracle_hits += hits
        self.oracle_access_s += seconds

    def _best(self, reads: np.ndarray, writes: np.ndarray) -> tuple[float, float]:
        """Fast-tier hits and access time with the best ``fast_pages`` of these pages fast."""
        load_f, store_f, load_s, store_s = self._lat
        slow = reads * load_s + writes * store_s
        gain = slow - (reads * load_f + writes * store_f)
        k = self.tiers.fast_pages
        accesses = reads + writes
        if k >= len(reads):
            return float(accesses.sum()), float((slow - gain).sum())
        if k <= 0:
            return 0.0, float(slow.sum())
        top = np.argpartition(-gain, k - 1)[:k]
        seconds = float(slow.sum() - gain[top].sum())
        if load_s - load_f == store_s - store_f:
            return float(accesses[top].sum()), seconds
        hot = np.argpartition(-accesses, k - 1)[:k]
        return float(accesses[hot].sum()), seconds

    def static(self) -> tuple[float, float]:
        """Fast-tier hits and access time of the best static placement."""
        return self._best(self.totals[:, 0], self.totals[:, 1])
