"""Learned copy pricing: a profile with ``cost_model: learned`` prices copies by its model.

The profile's ``learned_model`` names a skops file (relative to the profile
file) written by ``migpolicy hw learn``; models are loaded once per file and
cached. For an engine the model was trained on, the copy stage's wall time of
every batch becomes the model's prediction. The analytic engine still prices
the batch first and its split of that time into CPU, worker and offload-engine
time is kept, scaled to the learned wall time: the model predicts how long a
copy takes, not who is busy meanwhile. Every other profile and engine is left
to the analytic engines untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from migpolicy.folios import PMD_MAPPED
from migpolicy.hookspecs import hookimpl

if TYPE_CHECKING:
    from migpolicy.hardware.learned import LearnedModel

__all__ = ["model_for"]

_TIMES = ("wall_s", "cpu_s", "engine_s", "worker_s")
_cache: dict[tuple[Path, int], LearnedModel] = {}


def model_for(hw) -> LearnedModel:
    """The learned model a profile names, loaded once per file version."""
    from migpolicy.hardware.learned import load_model

    base = Path(hw.path).parent if hw.path is not None else Path.cwd()
    path = (base / hw.learned_model).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = -1  # load_model reports the missing file
    key = (path, stamp)
    if key not in _cache:
        _cache[key] = load_model(path)
    return _cache[key]


@hookimpl(wrapper=True)
def migpolicy_copy(batches, engine, hw, params):
    priced = yield
    if priced is None or getattr(hw, "cost_model", "analytic") != "learned":
        return priced
    model = model_for(hw)
    if engine not in model.engines:
        return priced
    nfolios = batches.nfolios
    pmd_folios = ((batches.folios["flags"] & PMD_MAPPED) != 0).astype(np.float64)
    pmd = batches.per_batch(pmd_folios) / nfolios
    wall = model.copy_seconds(engine, batches.nbytes / nfolios, nfolios, batches.workers,
                              placement=params.get("mt.placement", "spread"),
                              side=params.get("mt.side", "push"), pmd=pmd)
    out = priced.copy()
    scale = wall / np.maximum(priced["wall_s"], 1e-300)
    for column in _TIMES:
        out[column] = priced[column] * scale
    out["wall_s"] = wall
    return out
