"""When pricing runs its compiled loops (numba) instead of chains of numpy passes.

Both forms give the same numbers to the last bit (``tests/test_pricing_kernels.py``
checks one against the other); they differ in what they cost. The compiled
loops read each per-folio array once, where the numpy form walks it once per
field; but loading numba costs about 0.3 s per process. So a call prices with
the compiled loops when it is long (at least :data:`LONG` rows) or when numba
is loaded anyway (a replay, a tuning run), and short calls of commands such as
``migpolicy move`` never load it.

``MIGPOLICY_COMPILED=always`` or ``never`` overrides the choice (for
debugging, and for the tests that compare both forms).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import numpy as np

from migpolicy.errors import ConfigError

__all__ = ["LONG", "pricing_kernels", "sum_runs", "use_compiled"]

#: Rows from which a call loads numba rather than price with numpy passes.
LONG = 1 << 16


def use_compiled(n: int) -> bool:
    """Whether a pass over ``n`` rows should run the compiled loops."""
    mode = os.environ.get("MIGPOLICY_COMPILED", "auto")
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode != "auto":
        raise ConfigError(f"MIGPOLICY_COMPILED is {mode!r}; expected auto, always or never")
    return n >= LONG or "numba" in sys.modules


def pricing_kernels() -> ModuleType:
    """The compiled loops, :mod:`migpolicy.pricing_kernels` (numba is loaded on the first call)."""
    from migpolicy import pricing_kernels as kernels

    return kernels


def sum_runs(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(values, starts)``: compiled for a long float64 or int64 array."""
    if use_compiled(len(values)) and values.dtype in (np.float64, np.int64):
        return pricing_kernels().sum_runs(values, starts)
    return np.add.reduceat(values, starts)
