"""Prediction functions priced by the stage pipeline, for fitting and validation.

:mod:`migpolicy.hardware.fit` and :mod:`migpolicy.hardware.tables` take a
prediction function (profile, rows → GB/s) and :mod:`migpolicy.hardware.learned` a row pricer
(profile, row → report) rather than a plugin manager, so
the fitting code never depends on how rows are priced. The commands build
that function here, from the plugins' stage pipeline: every row is priced
exactly as ``migpolicy move`` prices it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

from migpolicy.hardware.profile import Profile
from migpolicy.hardware.tables import CopyShare, Predictor, row_params

if TYPE_CHECKING:
    from migpolicy.pipeline import Report

__all__ = ["RowPricer", "pipeline_copy_share", "pipeline_predictor", "pipeline_row_pricer"]

#: Prices one table row on a profile: (profile, row) → the pipeline's report.
RowPricer = Callable[[Profile, np.void], "Report"]


def _nodes(hw: Profile) -> tuple[int, int]:
    return (0, 1) if 1 in hw.nodes else (0, 0)


def pipeline_row_pricer(pm: pluggy.PluginManager, base_params: Mapping[str, Any]) -> RowPricer:
    """A function pricing one table row on a profile with ``pm``'s stages, like ``move``."""
    from migpolicy.pipeline import price_uniform
    from migpolicy.registries import copy_engines

    engines = copy_engines(pm)

    def price(hw: Profile, row: np.void) -> Report:
        src, dst = _nodes(hw)
        return price_uniform(pm, int(row["folio_bytes"]), int(row["folio_count"]), hw,
                             row_params(row, base_params, engines), src=src, dst=dst,
                             engines=engines)

    return price


def pipeline_predictor(pm: pluggy.PluginManager, base_params: Mapping[str, Any]) -> Predictor:
    """A predictor pricing every row with ``pm``'s stages, like ``migpolicy move``.

    A ``copy``-scope row is the copy stage's throughput alone; a ``move`` row
    the whole migration's.
    """
    price = pipeline_row_pricer(pm, base_params)

    def predict(hw: Profile, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            report = price(hw, row)
            if row["scope"] == "copy":
                out[i] = report.bytes / report.stages["copy"].wall_s / 1e9
            else:
                out[i] = report.throughput_gbps
        return out

    return predict


def pipeline_copy_share(pm: pluggy.PluginManager, base_params: Mapping[str, Any],
                        folio_size: int = 4096) -> CopyShare:
    """Fraction of a sequential-copy (``cpu``) migration's time spent copying."""
    from migpolicy.pipeline import price_uniform

    params = {**base_params, "engine": "cpu"}

    def share(hw: Profile, total_bytes: int) -> float:
        src, dst = _nodes(hw)
        report = price_uniform(pm, folio_size, max(1, total_bytes // folio_size), hw, params,
                               src=src, dst=dst)
        return report.stages["copy"].wall_s / report.total_s

    return share
