"""The tuner's pruner: a candidate stops when it trails the leader of its prefix by the margin."""

from __future__ import annotations

import math

import optuna
import pytest

from migpolicy.tuning.pruning import LeaderPruner

optuna.logging.set_verbosity(optuna.logging.ERROR)


def study_with(reports: list[dict[int, float]], pruner, pruned: int = 0) -> optuna.Study:
    """A study whose trials reported ``reports`` (step → value); the last ``pruned`` of them
    ended pruned, the others complete."""
    study = optuna.create_study(pruner=pruner)
    for index, values in enumerate(reports):
        trial = study.ask()
        for step, value in values.items():
            trial.report(value, step)
        if index >= len(reports) - pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, max(values.values()))
    return study


def verdict(study: optuna.Study, value: float, step: int = 0) -> bool:
    trial = study.ask()
    trial.report(value, step)
    return trial.should_prune()


def test_the_margin_narrows_from_wide_to_narrow_as_the_prefix_grows():
    pruner = LeaderPruner(steps=8, wide=0.3, narrow=0.08)
    margins = [pruner.margin(step) for step in range(8)]
    assert margins[:2] == [0.3, 0.3]  # 1/8 and 2/8 of the reports
    assert margins[5:] == [0.08] * 3  # from 6/8 on
    assert margins[3] == pytest.approx(0.3 + (0.08 - 0.3) * (4 / 8 - 0.25) / 0.5)  # 4/8: halfway
    assert margins == sorted(margins, reverse=True)


@pytest.mark.parametrize(("step", "value", "stops"), [
    (0, 1.29, False), (0, 1.31, True),    # early: 30% behind the leader goes on
    (7, 1.079, False), (7, 1.081, True),  # late: 8%
])
def test_a_candidate_stops_only_beyond_the_margin_at_its_step(step, value, stops):
    """The leader at every step reported 1.0, a slower trial 2.0."""
    study = study_with([{s: 1.0 for s in range(8)}, {s: 2.0 for s in range(8)}],
                       LeaderPruner(steps=9))
    assert verdict(study, value, step) is stops


def test_the_leader_is_the_best_at_that_step_pruned_trials_included():
    """A candidate that led at step 0 but was stopped later still sets the pace at step 0;
    the pace at step 1 is another trial's."""
    study = study_with([{0: 3.0, 1: 2.0}, {0: 1.0, 1: 5.0}], LeaderPruner(steps=8), pruned=1)
    assert verdict(study, 1.4, step=0)
    assert not verdict(study, 2.5, step=1)


def test_a_tuner_study_of_trials_that_trail_later_is_not_stopped_early():
    """Many candidates that never migrate tie at 1.0 (a plateau): a policy that migrates, 20%
    behind at first, goes on; Optuna's median pruner would stop it at once."""
    plateau = [{0: 1.0}] * 6
    assert not verdict(study_with(plateau, LeaderPruner(steps=8)), 1.2)
    assert verdict(study_with(plateau, optuna.pruners.MedianPruner(n_startup_trials=1)), 1.2)


@pytest.mark.parametrize("reports", [[], [{1: 1.0}], [{0: math.nan}]])
def test_a_step_nobody_reported_a_number_at_prunes_nothing(reports):
    assert not verdict(study_with(reports, LeaderPruner(steps=8), pruned=len(reports)), 100.0)


def test_n_startup_trials_must_have_reported():
    study = study_with([{0: 1.0}], LeaderPruner(steps=8, n_startup_trials=2))
    assert not verdict(study, 100.0)


def test_nan_is_pruned():
    assert verdict(study_with([{0: 1.0}], LeaderPruner(steps=8)), math.nan)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"steps": 4, "wide": 0.1, "narrow": 0.2},
                                    {"steps": 4, "narrow": -0.1},
                                    {"steps": 4, "n_startup_trials": 0}])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="expected steps >= 1"):
        LeaderPruner(**kwargs)


def test_only_a_feasible_trial_leads():
    """Under a CPU budget the fastest policy may spend too much CPU: it sets no pace."""
    study = optuna.create_study(pruner=LeaderPruner(steps=8))
    for value, constraint in ((1.0, 0.5), (2.0, -0.1)):  # over the budget, within it
        trial = study.ask()
        trial.report(value, 0)
        trial.set_constraint("cpu_budget", constraint)
        study.tell(trial, value)
    assert not verdict(study, 2.5)  # within 30% of the feasible leader (2.0)
    assert verdict(study, 2.7)
