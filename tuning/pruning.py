"""The pruner of ``migpolicy tune``: stop a candidate only when its prefix is clearly worse.

Optuna's ``MedianPruner`` stops a trial whose intermediate value is worse than
the median of the finished trials at the same step. On replayed traces that
is the wrong test: a policy that migrates pays its migrations early and earns
them back later, and when many candidates never migrate (a plateau of equal
values) the median *is* the plateau, so every policy that migrates at all is
stopped at the first report, and the sampler learns that migrating is bad.
:class:`MarginPruner` stops a trial only when it is worse than that
percentile by a relative ``margin`` (10% by default): the candidates that
stall on every fault or thrash the fast tier are stopped a quarter into the
trace; a policy that is merely investing goes on.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.trial import TrialState

from migpolicy.tuning.sampler import trials_this_trial

__all__ = ["MarginPruner"]


class MarginPruner(optuna.pruners.BasePruner):
    """Prune when the value is worse than (1 + ``margin``) x the ``percentile`` at its step.

    Needs ``n_startup_trials`` complete trials with a value at that step
    before it prunes anything; minimisation only (the tuner's objectives).
    """

    def __init__(self, margin: float = 0.1, percentile: float = 50.0,
                 n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        if margin < 0 or not 0 <= percentile <= 100 or n_startup_trials < 1 \
                or n_warmup_steps < 0:
            raise ValueError("expected margin >= 0, 0 <= percentile <= 100, "
                             "n_startup_trials >= 1, n_warmup_steps >= 0")
        self.margin, self.percentile, self.n_startup_trials = margin, percentile, n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        others = [t.intermediate_values[step]
                  for t in trials_this_trial(study, (TrialState.COMPLETE,))
                  if step in t.intermediate_values]
        if len(others) < self.n_startup_trials:
            return False
        return value > (1 + self.margin) * float(np.percentile(others, self.percentile))
