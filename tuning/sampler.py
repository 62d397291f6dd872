"""The tuner's sampler: Optuna's TPE, reading the study once per trial instead of per parameter.

With the constant liar (Optuna's default, which keeps parallel workers from
proposing the same candidate) TPE asks the storage for every trial, running
ones included, each time it samples a parameter, bypassing the study's
per-trial cache. On an RDB storage that is a dozen queries per parameter:
about 60 ms of a trial with a dozen parameters, and load on the database
server that the workers compete with on a small machine. Here TPE reads
through the study's per-trial cache (Optuna fills it on the trial's first
read and empties it when the next trial is asked for), as its other reads
do. What the cache misses (parameters another worker's running trial was
given in those milliseconds) is what the constant liar would have missed a
moment earlier anyway.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["SnapshotTPESampler", "trials_this_trial"]


def trials_this_trial(study: optuna.Study,
                      states: Container[TrialState] | None = None) -> list[FrozenTrial]:
    """The study's trials as read once for the trial being run (Optuna's per-trial cache).

    What the objective, the sampler and the pruner of one trial look at: one
    read of the storage per trial, not one per question.
    """
    return study._get_trials(deepcopy=False, states=states, use_cache=True)


class _CachedStudy:
    """The study itself, except that its trials are always read through the per-trial cache."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        del use_cache  # always
        trials = trials_this_trial(self._study, states)
        return [t.__deepcopy__({}) for t in trials] if deepcopy else trials


class SnapshotTPESampler(optuna.samplers.TPESampler):
    """:class:`optuna.samplers.TPESampler` that reads the study's trials once per trial."""

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return super().sample_independent(_CachedStudy(study), trial, param_name,
                                          param_distribution)
