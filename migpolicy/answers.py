"""What the stage hooks answer, and the quote a batch plugin may ask for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from migpolicy.costs import CostColumns
from migpolicy.folios import BatchPlan

__all__ = ["Accounting", "IsolateResult", "Quote"]

#: Payer (tenant id as a string, or ``kthread``) → ``cpu_s``, ``wall_s``, ``engine_s``.
Accounting = dict[str, dict[str, float]]

#: Prices the copy of some batches on one engine: ``quote(batches, engine)`` →
#: cost rows (what the copy stage would charge), for a batch plugin choosing engines.
Quote = Callable[[BatchPlan, str], np.ndarray]


@dataclass(frozen=True)
class IsolateResult:
    """What the isolate stage returns: one cost row per folio, and which were isolated.

    ``costs`` are :data:`~migpolicy.costs.COST_DTYPE` rows or
    :class:`~migpolicy.costs.CostColumns` standing for them.
    """

    costs: np.ndarray | CostColumns
    isolated: np.ndarray
