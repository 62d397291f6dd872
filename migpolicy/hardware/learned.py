"""The learned cost model: gradient boosting that predicts a batch's copy time.

Where the analytic model's form misfits, a profile may say ``cost_model:
learned``: the copy stage is then priced by a scikit-learn
``HistGradientBoostingRegressor`` trained on table rows (published tables or
calibration measurements), while isolate, batch and remap stay analytic.

Training target: each row's observed time (its bytes over its throughput)
minus what the analytic model says the other stages took (for a ``copy``
row, nothing), divided by the number of batches: the time one batch's copy
took. The model learns its logarithm (errors are relative) from features of
the batch: the engine (one-hot), log2 folio size, log2 folios in the batch,
workers, placement (fill), side (pull) and whether the folio is PMD-mapped.

Monotonic constraints, where the physics is certain: more bytes per folio and
more folios per batch never copy faster (+1), and filling one LLC domain is
never faster than spreading over several (+1). Workers are left free on
purpose: each worker costs a start-up, so for small batches more workers are
slower (the calibration shows it), for large ones faster.

Persisted with skops, never pickle: loading trusts scikit-learn's own types
and exactly the extra ones in :data:`TRUSTED_TYPES`, and refuses a file that
holds anything else. A JSON sidecar (``MODEL.skops.json``) records features,
training tables, sample count and the 5-fold cross-validated error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from migpolicy.errors import ConfigError, InputError
from migpolicy.files import atomic_write_bytes, input_file, read_text
from migpolicy.hardware.profile import Profile, today

if TYPE_CHECKING:
    from migpolicy.hardware.predict import RowPricer

__all__ = [
    "MONOTONIC",
    "NUMERIC_FEATURES",
    "TRUSTED_TYPES",
    "LearnedModel",
    "TrainingSet",
    "load_model",
    "save_model",
    "sidecar_path",
    "train",
    "training_set",
]

NUMERIC_FEATURES = ("log2_folio_bytes", "log2_folios", "workers", "fill", "pull", "pmd")
#: +1: the copy time never decreases as the feature grows.
MONOTONIC = {"log2_folio_bytes": 1, "log2_folios": 1, "fill": 1}
#: Types beyond scikit-learn's defaults that a model file may hold.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
FORMAT = 1
MIN_ROWS = 10


def sidecar_path(model_path: str | Path) -> Path:
    """Where a model's metadata lives: ``MODEL.skops.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def _features(
    engines: Sequence[str],
    engine: np.ndarray,
    folio_bytes: np.ndarray,
    folios: np.ndarray,
    workers: np.ndarray,
    fill: np.ndarray,
    pull: np.ndarray,
    pmd: np.ndarray,
) -> np.ndarray:
    columns = [np.log2(np.asarray(folio_bytes, dtype=float)),
               np.log2(np.asarray(folios, dtype=float)),
               np.asarray(workers, dtype=float), np.asarray(fill, dtype=float),
               np.asarray(pull, dtype=float), np.asarray(pmd, dtype=float)]
    n = len(columns[0])
    engine = np.broadcast_to(np.asarray(engine), n)
    columns += [(engine == name).astype(float) for name in engines]
    return np.column_stack([np.broadcast_to(c, n) for c in columns])


@dataclass
class LearnedModel:
    """A trained estimator, the engines it knows and its metadata."""

    estimator: Any
    engines: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    _threadpools: Any = field(default=None, repr=False, compare=False)

    @property
    def feature_names(self) -> list[str]:
        """Column names of the feature matrix, in order."""
        return [*NUMERIC_FEATURES, *(f"engine={e}" for e in self.engines)]

    def copy_seconds(
        self,
        engine: str | np.ndarray,
        folio_bytes: np.ndarray,
        folios: np.ndarray,
        workers: np.ndarray,
        *,
        placement: str | np.ndarray = "spread",
        side: str | np.ndarray = "push",
        pmd: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Predicted seconds to copy each batch (``folios`` folios of ``folio_bytes``)."""
        x = _features(self.engines, engine, folio_bytes, folios, workers,
                      np.asarray(placement) == "fill", np.asarray(side) == "pull", pmd)
        if self._threadpools is None:  # scan the loaded thread pools once per model
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()
        with self._threadpools.limit(limits=1, user_api="openmp"):
            return np.exp(self.estimator.predict(x))


@dataclass
class TrainingSet:
    """Per-row features, the per-batch copy-time target and what the analytic model said."""

    rows: np.ndarray
    tables: list[str]
    engines: tuple[str, ...]
    x: np.ndarray
    copy_s: np.ndarray
    other_s: np.ndarray
    batches: np.ndarray
    analytic_gbps: np.ndarray
    clamped: int

    @property
    def observed_gbps(self) -> np.ndarray:
        """Observed throughput of each row."""
        return self.rows["throughput_gbps"].astype(float)

    def throughput(self, copy_s: np.ndarray) -> np.ndarray:
        """Throughput of each row if one batch's copy took ``copy_s``."""
        nbytes = self.rows["folio_bytes"] * self.rows["folio_count"]
        return nbytes / (self.other_s + self.batches * copy_s) / 1e9


def training_set(
    price: RowPricer, hw: Profile, rows: np.ndarray, base_params: Mapping[str, Any],
    tables: Sequence[str] = (),
) -> TrainingSet:
    """Derive each row's per-batch copy time with the analytic model of ``hw``.

    ``price(hw, row)`` prices a row through the stages (see
    :func:`migpolicy.hardware.predict.pipeline_row_pricer`). A ``move`` row's
    other stages (isolate, batch, remap) are priced on ``hw``; when they alone
    exceed the observed time the copy is taken as 5% of it (counted in
    ``clamped``).
    """
    max_folios = int(base_params.get("batch.max_folios", 512))
    n = len(rows)
    other = np.zeros(n)
    analytic = np.zeros(n)
    for i, row in enumerate(rows):
        report = price(hw, row)
        copy_wall = report.stages["copy"].wall_s
        if row["scope"] == "copy":
            analytic[i] = report.bytes / copy_wall / 1e9
        else:
            other[i] = report.total_s - copy_wall
            analytic[i] = report.throughput_gbps
    count = rows["folio_count"].astype(float)
    nbytes = rows["folio_bytes"] * count
    observed_s = nbytes / (rows["throughput_gbps"] * 1e9)
    copy_total = observed_s - other
    low = copy_total < 0.05 * observed_s
    copy_total = np.where(low, 0.05 * observed_s, copy_total)
    other = np.where(low, 0.95 * observed_s, other)
    batches = np.ceil(count / max_folios)
    engines = tuple(sorted(set(rows["engine"].tolist())))
    x = _features(engines, rows["engine"], rows["folio_bytes"], count / batches, rows["workers"],
                  rows["placement"] == "fill", rows["side"] == "pull",
                  rows["folio_bytes"] == hw.pmd_size)
    return TrainingSet(rows=rows, tables=list(tables), engines=engines, x=x,
                       copy_s=copy_total / batches, other_s=other, batches=batches,
                       analytic_gbps=analytic, clamped=int(low.sum()))


def _one_thread() -> Any:
    """Run scikit-learn's OpenMP loops on one thread.

    On models this small more threads only wait for each other: tens of
    times slower on a busy machine.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


def _estimator(n_features: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    names = list(NUMERIC_FEATURES)
    monotonic = [MONOTONIC.get(name, 0) for name in names] + [0] * (n_features - len(names))
    return HistGradientBoostingRegressor(
        max_iter=200, learning_rate=0.1, max_leaf_nodes=6, min_samples_leaf=2,
        monotonic_cst=monotonic, early_stopping=False,
        random_state=seed,
    )


def _errors(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    from migpolicy.hardware.fit import abs_pct_err  # fit imports scipy: only when needed

    err = abs_pct_err(predicted, observed)
    return {"median_abs_pct_err": float(np.median(err)), "max_abs_pct_err": float(err.max())}


def train(data: TrainingSet, *, folds: int = 5, seed: int = 0,
          base_profile: str = "") -> LearnedModel:
    """Fit the estimator on every row; report ``folds``-fold cross-validated error too.

    The metadata holds the error of the cross-validated predictions (each row
    predicted by a model that never saw it), the in-sample error and the
    analytic model's error on the same rows, all as throughput errors.
    """
    import sklearn
    from sklearn.model_selection import KFold, cross_val_predict

    n = len(data.rows)
    if n < MIN_ROWS:
        raise InputError(f"training a learned model needs at least {MIN_ROWS} table rows, "
                         f"got {n}")
    y = np.log(data.copy_s)
    estimator = _estimator(data.x.shape[1], seed)
    splitter = KFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
    with _one_thread():
        cv_copy = np.exp(cross_val_predict(estimator, data.x, y, cv=splitter))
        estimator.fit(data.x, y)
        fitted_copy = np.exp(estimator.predict(data.x))
    observed = data.observed_gbps
    model = LearnedModel(estimator=estimator, engines=data.engines)
    model.meta = {
        "format": FORMAT,
        "estimator": type(estimator).__name__,
        "target": "log seconds of one batch's copy",
        "features": model.feature_names,
        "monotonic": dict(MONOTONIC),
        "engines": list(data.engines),
        "tables": list(data.tables),
        "base_profile": base_profile,
        "samples": n,
        "clamped_rows": data.clamped,
        "cv": {"folds": splitter.get_n_splits(), **_errors(data.throughput(cv_copy), observed)},
        "in_sample": _errors(data.throughput(fitted_copy), observed),
        "analytic": _errors(data.analytic_gbps, observed),
        "sklearn": sklearn.__version__,
        "trained": today(),
    }
    return model


def save_model(model: LearnedModel, path: str | Path) -> None:
    """Write the model with skops and its metadata sidecar, each atomically."""
    import skops.io as sio

    path = Path(path)
    meta = {**model.meta, "model": path.name}
    atomic_write_bytes(path, sio.dumps(model.estimator), "learned model")
    atomic_write_bytes(sidecar_path(path), (json.dumps(meta, indent=2) + "\n").encode(),
                       "learned model's metadata")


def load_model(path: str | Path) -> LearnedModel:
    """Read a model written by :func:`save_model`, trusting only the expected types.

    Raises :class:`ConfigError` naming the file for a missing or unreadable
    model, a missing sidecar, or a model holding a type not trusted.
    """
    path = Path(path)
    side = sidecar_path(path)
    try:
        meta = json.loads(read_text(side, "learned model's metadata"))
        input_file(path, "learned model")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{side}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    # imported only now: scikit-learn takes a second to import, a missing file no time
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingRegressor
    from skops.io.exceptions import UntrustedTypesFoundException

    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "engines" not in meta:
        raise ConfigError(f"{side}: expected learned-model metadata of format {FORMAT} "
                          "with its engines")
    try:
        estimator = sio.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ConfigError(f"{path}: refusing to load a learned model holding untrusted "
                          f"type(s): {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the learned model: "
                          f"{exc.strerror or exc}") from None
    except Exception as exc:  # a corrupt or foreign file: skops raises many kinds
        raise ConfigError(f"{path}: not a skops model file ({type(exc).__name__}: {exc})"
                          ) from None
    if not isinstance(estimator, HistGradientBoostingRegressor):
        raise ConfigError(f"{path}: expected a HistGradientBoostingRegressor, got "
                          f"{type(estimator).__name__}")
    engines = tuple(meta["engines"])
    expected = len(NUMERIC_FEATURES) + len(engines)
    if getattr(estimator, "n_features_in_", expected) != expected:
        raise ConfigError(f"{path}: the model takes {estimator.n_features_in_} features but "
                          f"its metadata describes {expected}")
    return LearnedModel(estimator=estimator, engines=engines, meta=meta)


def profile_model(hw: Profile, cache: dict | None = None) -> LearnedModel:
    """The learned model a profile names (``learned_model``, relative to the profile file).

    Loaded once per ``cache`` (a run context's): pricing calls it for every
    copy, so the file is neither re-read nor stat()ed each time.
    """
    base = Path(hw.path).parent if hw.path is not None else Path.cwd()
    path = (base / hw.learned_model).resolve()
    key = ("learned_model", str(path))
    if cache is None:
        return load_model(path)
    if key not in cache:
        cache[key] = load_model(path)
    return cache[key]
