"""Screening candidates with a learned model of the objective, before they are replayed.

Once ``min_trials`` candidates were replayed in full, a random forest
(scikit-learn) learns the objective from their parameters; each new candidate
is predicted by every tree. A candidate whose *optimistic* prediction (the
trees' mean minus their spread) is still worse than the ``quantile`` of the
replayed values by a relative ``margin`` is screened out: its trial ends
without a replay. With
several objectives the optimistic point must be dominated by a replayed one.
The forest's spread is what keeps it honest: where it has seen little, trees
disagree, the optimistic bound is low and the candidate is replayed.

Parameters are encoded per :class:`~migpolicy.tuning.space.SearchSpace`
distribution: numbers scaled to [0, 1] (on a log scale where the
distribution is), choices one-hot, and a parameter that does not apply to a
candidate (``hist.*`` under ``numab``) as -1, which trees split off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from migpolicy.tuning.space import SearchSpace

__all__ = ["Screener", "candidate_key", "dominated", "encode"]


def dominated(point: Sequence[float], by: np.ndarray) -> bool:
    """Whether a row of ``by`` is no worse than ``point`` everywhere and better somewhere
    (every objective minimised)."""
    point = np.asarray(point, dtype=np.float64)
    return bool(np.any(np.all(by <= point, axis=1) & np.any(by < point, axis=1)))


def candidate_key(params: Mapping[str, Any]) -> tuple:
    """A hashable identity of a candidate's searched values."""
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


def encode(space: SearchSpace, params: Mapping[str, Any]) -> np.ndarray:
    """One feature row for ``params`` (missing names: the parameter does not apply)."""
    row: list[float] = []
    for name, dist in space.distributions.items():
        value = params.get(name)
        if isinstance(dist, CategoricalDistribution):
            row.extend(float(value == choice) if name in params else 0.0
                       for choice in dist.choices)
        elif isinstance(dist, FloatDistribution | IntDistribution):
            if name not in params:
                row.append(-1.0)
                continue
            low, high, x = float(dist.low), float(dist.high), float(value)
            if dist.log:
                low, high, x = math.log(low), math.log(high), math.log(x)
            row.append((x - low) / (high - low) if high > low else 0.0)
    return np.asarray(row, dtype=np.float64)


class Screener:
    """A random forest over the fully replayed trials that rejects clearly worse candidates.

    ``quantile`` sets how good a candidate must look to be replayed: its
    optimistic prediction must not exceed that quantile of the replayed
    values by more than ``margin`` (single objective). ``spread`` scales the
    trees' standard deviation in the optimistic bound. A forest of few
    examples is overconfident (trees that saw the same few points agree), so
    the margin matters most early; ``min_trials`` full replays come first.

    The forest is trained again once the replayed candidates have grown by
    ``refit_growth`` (a tenth) since it last was, not after every new one:
    a forest of 48 trees takes about 40 ms to train, as long as several
    replays of a small trace, and with ``--jobs`` every worker trains its own.
    The threshold always reads every replayed value.
    """

    def __init__(self, space: SearchSpace, *, min_trials: int = 6, quantile: float = 0.5,
                 margin: float = 0.05, spread: float = 1.0, refit_growth: float = 0.1,
                 seed: int = 0) -> None:
        self.space, self.min_trials, self.quantile = space, min_trials, quantile
        self.margin, self.refit_growth = margin, refit_growth
        self.spread, self.seed = spread, seed
        self._model = None
        self._values = np.empty((0, 1))
        self._fitted_on = -1

    def fit(self, params: Sequence[Mapping[str, Any]], values: Sequence[Sequence[float]]) -> bool:
        """Learn from replayed candidates; ``False`` while there are too few to screen."""
        if len(params) < self.min_trials:
            self._model = None
            return False
        y = np.asarray(values, dtype=np.float64)
        self._values = y
        if (self._model is not None
                and self._fitted_on <= len(params) < self._fitted_on * (1 + self.refit_growth)):
            return True
        from sklearn.ensemble import RandomForestRegressor

        x = np.stack([encode(self.space, p) for p in params])
        self._model = RandomForestRegressor(n_estimators=48, min_samples_leaf=1,
                                            random_state=self.seed, n_jobs=1)
        self._model.fit(x, y[:, 0] if y.shape[1] == 1 else y)
        self._fitted_on = len(params)
        return True

    def predict(self, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread (standard deviation over the trees) of each objective."""
        if self._model is None:
            raise RuntimeError("the screener has not been fitted")
        # each tree's own predictor, on the float32 row its predict() would make (what
        # predict() adds is checking the row, 0.1 ms a tree, 48 trees per candidate)
        x = encode(self.space, params)[None, :].astype(np.float32)
        trees = np.stack([tree.tree_.predict(x)[0] for tree in self._model.estimators_])
        trees = trees.reshape(len(trees), -1)  # (trees, objectives)
        return trees.mean(axis=0), trees.std(axis=0)

    def screens(self, params: Mapping[str, Any]) -> tuple[bool, list[float]]:
        """Whether to skip the replay of ``params``, and the predicted objective values."""
        mean, std = self.predict(params)
        optimistic = mean - self.spread * std
        if self._values.shape[1] == 1:
            threshold = np.quantile(self._values[:, 0], self.quantile) * (1 + self.margin)
            return bool(optimistic[0] > threshold), mean.tolist()
        bound = optimistic / (1 + self.margin)
        return dominated(bound, self._values), mean.tolist()

