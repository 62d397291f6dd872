"""The tuner's pruner: on a plateau of equal values, only clearly worse candidates stop."""

from __future__ import annotations

import optuna
import pytest

from migpolicy.tuning.pruning import MarginPruner

optuna.logging.set_verbosity(optuna.logging.ERROR)


def study_with(values: list[float], pruner) -> optuna.Study:
    """A study whose complete trials reported ``values`` at step 0."""
    study = optuna.create_study(pruner=pruner)
    for value in values:
        trial = study.ask()
        trial.report(value, 0)
        study.tell(trial, value * 4)
    return study


def verdict(study: optuna.Study, value: float, step: int = 0) -> bool:
    trial = study.ask()
    trial.report(value, step)
    return trial.should_prune()


def test_a_plateau_stops_only_what_exceeds_it_by_the_margin():
    """Five candidates that never migrate tie at 1.0: a policy 5% above (investing) goes on,
    one 20% above stops; Optuna's median pruner would stop both."""
    study = study_with([1.0] * 5 + [1.5], MarginPruner(margin=0.1))
    assert not verdict(study, 1.05)
    assert verdict(study, 1.2)
    median = study_with([1.0] * 5 + [1.5], optuna.pruners.MedianPruner(n_startup_trials=1))
    assert verdict(median, 1.05)


@pytest.mark.parametrize("values", [[1.0] * 4, []])
def test_too_few_finished_trials_prune_nothing(values):
    assert not verdict(study_with(values, MarginPruner()), 100.0)


def test_a_step_nobody_reported_prunes_nothing():
    assert not verdict(study_with([1.0] * 6, MarginPruner()), 100.0, step=3)


def test_nan_is_pruned():
    assert verdict(study_with([1.0] * 6, MarginPruner()), float("nan"))


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError, match="margin >= 0"):
        MarginPruner(margin=-1)


def test_warm_up_steps_prune_nothing():
    study = study_with([1.0] * 6, MarginPruner(n_warmup_steps=1))
    assert not verdict(study, 100.0, step=0)
