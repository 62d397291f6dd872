"""Fitting a profile's parameters to observed throughput (published tables or measurements).

Least squares on the log of predicted over observed throughput, over the
logs of the free parameters (so every parameter stays positive and errors are
relative). Each residual ``r`` is weighted by ``sqrt(1 + (r / tail)^12)``: rows
within about ``tail`` (22%) of their observation count as in plain least
squares, rows beyond it far more, so one noisy row cannot be left 35% off to
shave a point off the median (published tables carry such rows: RFC V3's
16-folio cpu row is slower than its 8-folio one). Rows are priced by a
prediction function the caller passes (:data:`migpolicy.hardware.tables.Predictor`;
the commands build it from the stage pipeline, :mod:`migpolicy.hardware.predict`).
Tied parameters follow a free one (e.g. remap costs equal to isolate costs
where the data cannot tell them apart); extra residuals add other evidence
(e.g. the RFC V1 copy share).

A fit says when not to trust it:

* fewer residuals (rows) than free parameters is refused before fitting;
* every free parameter has plausible bounds (by unit, :func:`bounds_for`); one
  that ends at a bound is named (:attr:`FitResult.at_bound`): the data pushed it
  out of the plausible range, so its value is not a measurement;
* a parameter the data do not determine (its relative standard error, from
  the Jacobian at the solution, exceeds a factor of two, or the rows do not
  move it at all) is named (:attr:`FitResult.undetermined`);
* both lists go into the provenance the fitted values carry;
* a fit that does not converge says so (``converged=False``); callers must not
  write its profile.

Some parameters no table of move_pages() throughput can identify; they are
never in :func:`default_free` and keep the base profile's measured or assumed
value (:data:`NOT_IDENTIFIABLE` says why for each).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from migpolicy.errors import InputError
from migpolicy.hardware.profile import Profile, Provenance
from migpolicy.hardware.schema import NODE_KEYS, SECTIONS
from migpolicy.hardware.tables import CopyShare, Predictor

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_TIES",
    "NOT_IDENTIFIABLE",
    "TAIL",
    "FitResult",
    "abs_pct_err",
    "bounds_for",
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
    "memory.ccd_gbps",
    "memory.link_gbps",
    "memory.saturation",
)
#: Parameters only rows of one engine constrain.
_ENGINE_FREE = {
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
#: Parameters throughput tables cannot identify, and why: they stay measured or assumed.
NOT_IDENTIFIABLE = {
    "memory.thread_gbps": "threads spread one per LLC domain, so thread and domain caps grow "
                          "together; the fill rows only bound one core's bandwidth from below",
    "memory.pull_factor": "no table moves with workers on the destination node",
    "stages.isolate.retry_ns": "every published row moves idle, unpinned folios",
    "engines.dma.completion_ns": "one completion per batch is indistinguishable from the "
                                 "batch overhead",
    "engines.cpu.folio_ns": "move_pages() rows cannot split per-folio copy calls from the "
                            "serial per-folio isolate and remap work (RFC V3 drives it to 0)",
    "engines.mt.thread_start_ns": "a wake-up per worker per 512-folio batch changes no "
                                  "published row by more than a fraction of a percent",
    "engines.dma.overlap": "RFC V3 shows that a channel overlaps descriptor work with data "
                           "movement, not how sharply: fitted, the exponent goes from 1 to "
                           "about 9 with a relative uncertainty of x5, and any value from "
                           "about 4 up fits alike",
}
#: Throughput alone cannot split the serial per-folio work between unmapping and
#: remapping: by default both get the same value (an assumption the provenance states).
DEFAULT_TIES = {
    "stages.remap.folio_ns": "stages.isolate.folio_ns",
    "stages.remap.pte_ns": "stages.isolate.pte_ns",
}
#: Plausible ranges by unit; a fitted value at one of these is reported, not trusted.
_UNIT_BOUNDS = {"ns": (1e-2, 1e7), "GB/s": (0.05, 5e3), "": (0.05, 50.0)}
DEFAULT_BOUNDS = {
    "memory.saturation": (0.3, 30.0),
    "engines.dma.saturation": (0.3, 30.0),
    "engines.dma.overlap": (1.0, 30.0),
}
#: A parameter whose relative standard error exceeds this factor is "not determined".
_UNDETERMINED_FACTOR = 2.0
#: Relative noise assumed at least, so a perfect fit to few rows claims no false precision.
_NOISE_FLOOR = 0.02
#: A value within this relative distance of a bound "ended at the bound".
_AT_BOUND = 1e-3
#: Relative error from which a row's residual weighs more than in least squares.
TAIL = 0.22
_TAIL_POWER = 12


def default_free(engines: Sequence[str]) -> list[str]:
    """The parameters a table with rows of ``engines`` can determine."""
    free = list(_COMMON_FREE)
    for engine in dict.fromkeys(engines):
        free.extend(_ENGINE_FREE.get(engine, ()))
    return free


def bounds_for(name: str, overrides: Mapping[str, tuple[float, float]] | None = None
               ) -> tuple[float, float]:
    """The plausible range of parameter ``name`` (dotted path), by its unit unless overridden."""
    overrides = {**DEFAULT_BOUNDS, **(overrides or {})}
    if name in overrides:
        return overrides[name]
    section, key = name.rsplit(".", 1)
    checks = NODE_KEYS if section.startswith("nodes.") else SECTIONS.get(section, {})
    check = checks.get(key)
    unit = check.unit if check is not None else ""
    return _UNIT_BOUNDS.get(unit, (1e-3, 1e12))


def copy_share_residuals(share: CopyShare, stage_rows: np.ndarray,
                         weight: float = 3.0) -> ExtraResiduals:
    """Residuals pulling the sequential copy's share of migration time to ``stage_rows``.

    Only ``cpu_generic`` rows are used (the kernel's sequential copy path).
    """
    rows = stage_rows[stage_rows["path"] == "cpu_generic"]

    def residuals(profile: Profile) -> np.ndarray:
        shares = [share(profile, int(r["total_bytes"])) for r in rows]
        return weight * np.log(np.asarray(shares) / rows["copy_fraction"])

    return residuals


@dataclass
class FitResult:
    """A fitted profile, how well it fits, and which values not to trust."""

    profile: Profile
    observed: np.ndarray
    predicted: np.ndarray
    converged: bool
    message: str
    evaluations: int
    values: dict[str, float] = field(default_factory=dict)
    #: Free parameters that ended at a bound of their plausible range: name → the bound.
    at_bound: dict[str, float] = field(default_factory=dict)
    #: Free parameters the data did not determine: name → relative standard error (x factor).
    undetermined: dict[str, float] = field(default_factory=dict)

    @property
    def abs_pct_err(self) -> np.ndarray:
        """Absolute percentage error of each row."""
        return abs_pct_err(self.predicted, self.observed)

    def warnings(self) -> list[str]:
        """One sentence per parameter not to trust."""
        out = [f"{name} ended at its bound {bound:g}: the data pushed it out of its plausible "
               "range, so its value is not a measurement" for name, bound in self.at_bound.items()]
        out += [f"{name} is not determined by these rows (relative uncertainty "
                f"{_factor(f)}); its value is arbitrary" for name, f in self.undetermined.items()]
        return out


#: Beyond this factor an uncertainty says only that the rows barely constrain the value
#: (a near-singular Jacobian gives factors such as x1e+247): it is shown as "over x1000".
_SHOWN_FACTOR = 1e3


def _factor(f: float) -> str:
    """An uncertainty factor as the warnings word it."""
    if not np.isfinite(f):
        return "unbounded"
    return f"over x{_SHOWN_FACTOR:g}" if f > _SHOWN_FACTOR else f"x{f:.3g}"


def abs_pct_err(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``|predicted / observed - 1| * 100`` per row."""
    return np.abs(np.asarray(predicted) / np.asarray(observed) - 1.0) * 100.0


def _uncertainty(jac: np.ndarray, residuals: np.ndarray, n: int) -> np.ndarray:
    """Per free parameter, the factor its value is uncertain by (1 sigma; inf: undetermined)."""
    m = len(residuals)
    s2 = max(float(residuals @ residuals) / max(m - n, 1), _NOISE_FLOOR ** 2)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    null = sv <= max(sv.max(initial=0.0), 1e-300) * 1e-9
    sigma = np.sqrt(s2 * np.sum((vt[~null] / sv[~null, None]) ** 2, axis=0))
    involved = np.any(np.abs(vt[null]) > 0.1, axis=0) if null.any() else np.zeros(n, bool)
    sigma[involved] = np.inf
    with np.errstate(over="ignore"):
        return np.exp(sigma)


def fit_parameters(
    predict: Predictor,
    hw: Profile,
    rows: np.ndarray,
    free: Sequence[str],
    provenance: Provenance,
    *,
    ties: Mapping[str, str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    extra: ExtraResiduals | None = None,
    max_evaluations: int = 4000,
    progress: Callable[[int], None] | None = None,
    tail: float | None = TAIL,
) -> FitResult:
    """Fit ``free`` parameters (dotted paths) of ``hw`` to the table ``rows``.

    ``predict`` prices the rows on a candidate profile; ``ties`` maps a
    dependent parameter to the free one whose value it copies; ``bounds``
    overrides a free parameter's plausible range (natural units);
    ``progress`` is called with the number of evaluations so far; ``tail``
    sets the relative error beyond which rows weigh more (``None``: plain
    least squares). Raises
    :class:`InputError` when the rows (and extra residuals) are fewer than the
    free parameters. The fitted values carry ``provenance`` with the
    parameters at a bound and the undetermined ones added to its detail.
    """
    ties = dict(ties or {})
    free = list(free)
    observed = rows["throughput_gbps"].astype(float)
    extras = 0 if extra is None else len(extra(hw))
    if len(rows) + extras < len(free):
        raise InputError(f"{len(rows) + extras} rows cannot determine {len(free)} free "
                         f"parameters; give more rows or fewer --free parameters")
    ranges = [bounds_for(name, bounds) for name in free]
    lower = np.log([r[0] for r in ranges])
    upper = np.log([r[1] for r in ranges])
    x0 = np.clip(np.log([hw.value(name) for name in free]), lower + 1e-6, upper - 1e-6)
    count = [0]

    def profile_at(x: np.ndarray, prov: Provenance) -> Profile:
        values = dict(zip(free, np.exp(x), strict=True))
        values.update({dep: values[src] for dep, src in ties.items()})
        return hw.with_values(values, prov)

    def residuals(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        if progress is not None:
            progress(count[0])
        prof = profile_at(x, provenance)
        predicted = predict(prof, rows)
        out = np.log(np.maximum(predicted, 1e-12) / observed)
        if tail is not None:
            out = out * np.sqrt(1.0 + (np.abs(out) / tail) ** _TAIL_POWER)
        if extra is not None:
            out = np.concatenate([out, extra(prof)])
        return out

    uncertain = np.ones(len(free))
    try:
        result = least_squares(residuals, x0, bounds=(lower, upper), x_scale=1.0,
                               diff_step=1e-4, max_nfev=max_evaluations, method="trf")
        converged = bool(result.success and np.all(np.isfinite(result.fun)))
        message = str(result.message)
        x = result.x
        uncertain = _uncertainty(np.asarray(result.jac), np.asarray(result.fun), len(free))
    except (ValueError, FloatingPointError) as exc:
        converged, message, x = False, f"the optimiser failed: {exc}", x0
    at_bound = {}
    for name, value, lo, hi in zip(free, x, lower, upper, strict=True):
        if value - lo <= _AT_BOUND:
            at_bound[name] = float(np.exp(lo))
        elif hi - value <= _AT_BOUND:
            at_bound[name] = float(np.exp(hi))
    undetermined = {name: float(f) for name, f in zip(free, uncertain, strict=True)
                    if f > _UNDETERMINED_FACTOR and name not in at_bound}
    detail = dict(provenance.detail)
    if at_bound:
        detail["at_bound"] = ", ".join(f"{n} = {b:g}" for n, b in at_bound.items())
    if undetermined:
        detail["undetermined"] = ", ".join(undetermined)
    final = Provenance(provenance.id, provenance.kind, detail)
    fitted = profile_at(x, final)
    predicted = predict(fitted, rows)
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
        at_bound=at_bound,
        undetermined=undetermined,
    )
