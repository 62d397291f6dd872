"""The pruner of ``migpolicy tune``: stop a candidate that trails the leader of its prefix.

A replay's objective so far ranks candidates more reliably the more of the
trace it covers. On the tuning-quality benchmark's grids (900 policies on each
of 3 traces x 2 profiles), the policies that end within 2% of the best trailed
the best value at 1/8 of the trace by up to 34%, at 3/8 by up to 15%, and at
3/4 by under 8%: a policy that migrates pays its migrations early and earns
them back later, and a trace whose hot set moves between phases rewards it
only after a phase change. So :class:`LeaderPruner` stops a trial whose value
at a step exceeds the best value any trial reported at that step by more than
a margin that narrows as the prefix grows: ``wide`` (30%) over the first
quarter of the reports, ``narrow`` (8%) from three quarters on, linear in
between.

It compares with the *leader*, not with a percentile of the others: the
sampler concentrates on good regions, so a percentile of the reported values
tightens as the study goes on until the eventual winners, slow starters,
are stopped (measured: a 30th-percentile rule lost the optimum of a trace with
phases on every seed). It needs only one other trial at the step: pruning is
what makes the early trials of a study cheap (the first full replay is the
kernel default's, and every later candidate already has it to trail).
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

from migpolicy.tuning.sampler import trials_this_trial

__all__ = ["LeaderPruner"]


class LeaderPruner(optuna.pruners.BasePruner):
    """Prune when the value at a step exceeds (1 + margin) x the best value reported there.

    ``steps`` is how many reports a full evaluation makes (the pruner's
    position in it sets the margin, see :meth:`margin`); ``n_startup_trials``
    other trials (complete or pruned) must have reported at the step before it
    prunes anything. Only a feasible trial can lead (every constraint of
    ``Trial.set_constraint`` at most 0; a pruned trial's as recorded when it was
    stopped): a policy over the CPU budget would set a pace that no admissible
    policy can keep. Minimisation only (the tuner's objectives); NaN is pruned.
    """

    def __init__(self, steps: int, wide: float = 0.3, narrow: float = 0.08,
                 n_startup_trials: int = 1) -> None:
        if steps < 1 or not 0 <= narrow <= wide or n_startup_trials < 1:
            raise ValueError("expected steps >= 1, 0 <= narrow <= wide, n_startup_trials >= 1")
        self.steps, self.wide, self.narrow = steps, wide, narrow
        self.n_startup_trials = n_startup_trials

    def margin(self, step: int) -> float:
        """The relative margin at report ``step`` (0-based): ``wide`` up to a quarter of the
        reports, ``narrow`` from three quarters on, linear in between."""
        done = (step + 1) / self.steps
        if done <= 0.25:
            return self.wide
        if done >= 0.75:
            return self.narrow
        return self.wide + (self.narrow - self.wide) * (done - 0.25) / 0.5

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        others = [v for t in trials_this_trial(study, (TrialState.COMPLETE, TrialState.PRUNED))
                  if not math.isnan(v := t.intermediate_values.get(step, math.nan))
                  and all(c <= 0 for c in t.constraints.values())]
        if len(others) < self.n_startup_trials:
            return False
        return value > (1 + self.margin(step)) * min(others)
