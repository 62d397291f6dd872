"""Fitting a profile's parameters to observed throughput (published tables or measurements).

Least squares on the log of predicted over observed throughput, over the
logs of the free parameters (so every parameter stays positive and errors are
relative), with every prediction made by the machinery of ``migpolicy move``.
Tied parameters follow a free one (e.g. remap costs equal to isolate costs
where the data cannot tell them apart); extra residuals add other evidence
(e.g. the RFC V1 copy share). A fit that does not converge says so and
returns ``converged=False``; callers must not write its profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from migpolicy.hardware.profile import Profile, Provenance
from migpolicy.hardware.tables import predict_rows

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_TIES",
    "FitResult",
    "abs_pct_err",
    "copy_share_residuals",
    "default_free",
    "fit_parameters",
]

#: Optional extra residuals: profile → array of relative errors (log-ratios).
ExtraResiduals = Callable[[Profile], np.ndarray]

#: Parameters every throughput table constrains.
_COMMON_FREE = (
    "stages.isolate.folio_ns",
    "stages.isolate.pte_ns",
    "stages.batch.batch_ns",
    "memory.thread_gbps",
    "memory.ccd_gbps",
    "memory.link_gbps",
    "memory.saturation",
    "engines.cpu.folio_ns",
)
#: Parameters only rows of one engine constrain.
_ENGINE_FREE = {
    "mt": ("engines.mt.thread_start_ns",),
    "dma": (
        "engines.dma.prep_ns",
        "engines.dma.desc_ns",
        "engines.dma.pte_ns",
        "engines.dma.channel_gbps",
        "engines.dma.engine_gbps",
        "engines.dma.total_gbps",
        "engines.dma.saturation",
    ),
    "gpu": ("engines.gpu.launch_ns", "engines.gpu.stream_gbps", "engines.gpu.link_gbps"),
}
#: Throughput alone cannot split the serial per-folio work between unmapping and
#: remapping: by default both get the same value (an assumption the provenance states).
DEFAULT_TIES = {
    "stages.remap.folio_ns": "stages.isolate.folio_ns",
    "stages.remap.pte_ns": "stages.isolate.pte_ns",
}
DEFAULT_BOUNDS = {
    "memory.saturation": (0.3, 30.0),
    "engines.dma.saturation": (0.3, 30.0),
}


def default_free(engines: Sequence[str]) -> list[str]:
    """The parameters a table with rows of ``engines`` can determine."""
    free = list(_COMMON_FREE)
    for engine in dict.fromkeys(engines):
        free.extend(_ENGINE_FREE.get(engine, ()))
    return free


def copy_share_residuals(
    pm: Any, stage_rows: np.ndarray, base_params: Mapping[str, Any], weight: float = 3.0
) -> ExtraResiduals:
    """Residuals pulling the sequential copy's share of migration time to ``stage_rows``.

    Only ``cpu_generic`` rows are used (the kernel's sequential copy path).
    """
    from migpolicy.hardware.tables import predict_copy_share

    rows = stage_rows[stage_rows["path"] == "cpu_generic"]

    def residuals(profile: Profile) -> np.ndarray:
        shares = [predict_copy_share(pm, profile, int(r["total_bytes"]), base_params)
                  for r in rows]
        return weight * np.log(np.asarray(shares) / rows["copy_fraction"])

    return residuals



@dataclass
class FitResult:
    """A fitted profile and how well it fits."""

    profile: Profile
    observed: np.ndarray
    predicted: np.ndarray
    converged: bool
    message: str
    evaluations: int
    values: dict[str, float] = field(default_factory=dict)

    @property
    def abs_pct_err(self) -> np.ndarray:
        """Absolute percentage error of each row."""
        return abs_pct_err(self.predicted, self.observed)


def abs_pct_err(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``|predicted / observed - 1| * 100`` per row."""
    return np.abs(np.asarray(predicted) / np.asarray(observed) - 1.0) * 100.0


def fit_parameters(
    pm: Any,
    hw: Profile,
    rows: np.ndarray,
    free: Sequence[str],
    base_params: Mapping[str, Any],
    provenance: Provenance,
    *,
    ties: Mapping[str, str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    extra: ExtraResiduals | None = None,
    max_evaluations: int = 4000,
    progress: Callable[[int], None] | None = None,
) -> FitResult:
    """Fit ``free`` parameters (dotted paths) of ``hw`` to the table ``rows``.

    ``ties`` maps a dependent parameter to the free one whose value it copies;
    ``bounds`` limits a free parameter (natural units); ``progress`` is called
    with the number of evaluations so far.
    """
    ties = dict(ties or {})
    bounds = dict(bounds or {})
    observed = rows["throughput_gbps"].astype(float)
    x0 = np.log([hw.value(name) for name in free])
    lower = np.array([np.log(bounds.get(n, (1e-12, 1e12))[0]) for n in free])
    upper = np.array([np.log(bounds.get(n, (1e-12, 1e12))[1]) for n in free])
    x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
    count = [0]

    def profile_at(x: np.ndarray) -> Profile:
        values = dict(zip(free, np.exp(x), strict=True))
        values.update({dep: values[src] for dep, src in ties.items()})
        return hw.with_values(values, provenance)

    def residuals(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        if progress is not None:
            progress(count[0])
        prof = profile_at(x)
        predicted = predict_rows(pm, prof, rows, base_params)
        out = np.log(np.maximum(predicted, 1e-12) / observed)
        if extra is not None:
            out = np.concatenate([out, extra(prof)])
        return out

    try:
        result = least_squares(residuals, x0, bounds=(lower, upper), x_scale=1.0,
                               diff_step=1e-4, max_nfev=max_evaluations, method="trf")
        converged = bool(result.success and np.all(np.isfinite(result.fun)))
        message = str(result.message)
        x = result.x
    except (ValueError, FloatingPointError) as exc:
        converged, message, x = False, f"the optimiser failed: {exc}", x0
    fitted = profile_at(x)
    predicted = predict_rows(pm, fitted, rows, base_params)
    if not np.all(np.isfinite(predicted)):
        converged, message = False, "the fitted model predicts non-finite throughput"
    return FitResult(
        profile=fitted,
        observed=observed,
        predicted=predicted,
        converged=converged,
        message=message,
        evaluations=count[0],
        values={name: float(v) for name, v in zip(free, np.exp(x), strict=True)},
    )
