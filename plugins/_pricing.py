"""Helpers the built-in stage plugins share: cost rows from time arrays, node pairs."""

from __future__ import annotations

import numpy as np

from migpolicy.contract import BatchPlan
from migpolicy.contract import cost_rows as _rows

__all__ = ["batch_nodes", "cost_rows", "ns"]

ns = 1e-9


def cost_rows(
    batches: BatchPlan,
    *,
    wall_s: np.ndarray,
    cpu_s: np.ndarray,
    engine_s: np.ndarray | float = 0.0,
    worker_s: np.ndarray | float = 0.0,
) -> np.ndarray:
    """One cost row per batch with the batch's bytes and folio count filled in."""
    return _rows(batches.n_batches, wall_s=wall_s, cpu_s=cpu_s, engine_s=engine_s,
                 worker_s=worker_s, bytes=batches.nbytes, folios=batches.nfolios)


def batch_nodes(batches: BatchPlan) -> list[tuple[np.ndarray, int, int]]:
    """Group batches by (source, destination) node of their first folio.

    Returns ``(batch mask, src, dst)`` triples; a move_pages() batch moves
    between one pair of nodes.
    """
    first = batches.folios[batches.bounds[:-1]]
    pairs = first["src"].astype(np.int64) * 65536 + first["dst"].astype(np.int64)
    out = []
    for pair in np.unique(pairs):
        out.append((pairs == pair, int(pair // 65536), int(pair % 65536)))
    return out
