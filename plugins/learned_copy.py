"""Learned copy pricing: a profile with ``cost_model: learned`` prices copies by its model.

The profile's ``learned_model`` names a skops file (relative to the profile
file) written by ``migpolicy hw learn``; the model is loaded once per run
context (kept in the copy hook's ``cache``). For an engine the model was
trained on, the copy stage's wall time of every batch becomes the model's
prediction. The analytic engine still prices the batch first and its split of
that time into CPU, worker and offload-engine time is kept, scaled to the
learned wall time: the model predicts how long a copy takes, not who is busy
meanwhile. Every other profile and engine is left to the analytic engines
untouched.
"""

from __future__ import annotations

import numpy as np

from migpolicy.contract import PMD_MAPPED, hookimpl
from migpolicy.hardware.learned import profile_model

_TIMES = ("wall_s", "cpu_s", "engine_s", "worker_s")


@hookimpl(wrapper=True)
def migpolicy_copy(batches, engine, hw, params, cache):
    priced = yield
    if priced is None or getattr(hw, "cost_model", "analytic") != "learned":
        return priced
    model = profile_model(hw, cache)
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
