"""The tuner's study: trials replay traces, the default policy bounds the best, storage resumes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from migpolicy.errors import InputError
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import DEFAULT_POLICY, ReplayOptions
from migpolicy.traces import open_trace
from migpolicy.tuning.study import Tuner, open_study, summary

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def traces(tmp_path_factory, migpolicy_exe) -> list[Path]:
    """Two small phase-changing traces with several epochs each."""
    folder = tmp_path_factory.mktemp("tune")
    paths = []
    for seed in (0, 1):
        path = folder / f"phases{seed}.mpt"
        subprocess.run([migpolicy_exe, "trace", "gen", "phases", "--out", str(path), "--events",
                        "60K", "--pages", "512", "--seed", str(seed), "--param",
                        "interval_ns=100"], check=True, capture_output=True)
        paths.append(path)
    return paths


def make_tuner(paths, objective="app_time", fixed=None) -> Tuner:
    pm = get_plugin_manager()
    return Tuner(pm=pm, hw="dram-cxl", traces=[open_trace(p, pm) for p in paths],
                 fixed=fixed or {}, objective=objective, options=ReplayOptions(epoch_ns=500_000))


def run_study(tuner: Tuner, storage: str, trials: int, name: str = "s", seed: int = 3):
    study = open_study(tuner, name, storage, sampler=optuna.samplers.TPESampler(seed=seed))
    tuner.optimize(study, n_trials=trials)
    return study


@pytest.mark.parametrize("objective", ["app_time", "migration_cpu"])
def test_best_is_never_worse_than_the_kernel_default(traces, tmp_path, objective):
    tuner = make_tuner(traces, objective)
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=6)
    baseline = tuner.baseline()
    first = study.trials[0]
    # the first trial is the kernel default: its value is the baseline's, replayed independently
    assert first.params["placement"] == DEFAULT_POLICY["placement"]
    assert first.value == pytest.approx(baseline, rel=1e-12)
    data = summary(study, baseline)
    assert data["best_value"] <= baseline
    assert data["improvement_pct"] >= 0
    assert data["trials"] == 6
    assert data["replays_full"] + data["replays_pruned"] + data["trials_failed"] == 6
    assert data["screened_out"] == 0


def test_objective_is_the_sum_over_traces(traces):
    one, two = make_tuner(traces[:1]), make_tuner(traces[1:])
    both = make_tuner(traces)
    policy = {"placement": "hist", "placement.demotion": "none"}
    assert both.evaluate(policy) == pytest.approx(one.evaluate(policy) + two.evaluate(policy))


def test_invalid_parameters_fail_the_trial_with_a_reason(traces, tmp_path):
    # a fixed value the resolver refuses makes every candidate invalid: each trial fails, named
    tuner = make_tuner(traces[:1], fixed={"batch.max_folios": -5})
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    for trial in study.trials:
        assert trial.user_attrs["outcome"] == "failed"
        assert "batch.max_folios" in trial.user_attrs["reason"]
    with pytest.raises(InputError, match="no completed trial"):
        summary(study, 1.0)


def test_a_bad_candidate_is_pruned_after_its_first_trace(traces, tmp_path):
    tuner = make_tuner(traces)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = {"placement": "none", "placement.demotion": "none", "engine": "cpu"}
    study.enqueue_trial(good)
    study.optimize(lambda t: tuner.evaluate(tuner.params(good), t), n_trials=1)
    # a candidate whose first trace already costs more than the median stops there
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        tuner.evaluate(tuner.params({**good, "placement": "numab", "batch.max_folios": 1,
                                     "placement.demotion": "watermark"}), trial)
    assert trial.user_attrs["traces_replayed"] == 1


def test_a_study_with_another_space_is_refused(traces, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run_study(make_tuner(traces[:1]), storage, trials=1)
    narrowed = make_tuner(traces[:1], fixed={"engine": "cpu"})
    with pytest.raises(InputError, match=r"searches space [0-9a-f]{16} .* this run's space is "
                                         r"[0-9a-f]{16}"):
        open_study(narrowed, "s", storage)
    with pytest.raises(InputError, match="another objective"):
        open_study(make_tuner(traces[:1], "migration_cpu"), "s", storage)


def test_resuming_adds_trials_and_keeps_the_first(traces, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = run_study(make_tuner(traces[:1]), storage, trials=3)
    values = [t.value for t in first.trials]
    again = run_study(make_tuner(traces[:1]), storage, trials=2, seed=4)
    assert len(again.trials) == 5
    assert [t.value for t in again.trials[:3]] == values
    assert sum(1 for t in again.trials if t.user_attrs.get("baseline")) == 1


def test_a_dead_storage_url_is_one_sentence(traces):
    with pytest.raises(InputError, match="--storage nosuchdb://x: cannot open"):
        open_study(make_tuner(traces[:1]), "s", "nosuchdb://x")


def test_everything_fixed_is_an_empty_space(traces):
    space = make_tuner(traces[:1]).space
    fixed = {name: dist.to_external_repr(0) if isinstance(dist, CategoricalDistribution)
             else dist.low for name, dist in space.distributions.items()}
    with pytest.raises(InputError, match="search space is empty"):
        make_tuner(traces[:1], fixed=fixed)


def test_ctrl_c_inside_a_storage_write_leaves_no_trial_running(traces, tmp_path):
    tuner = make_tuner(traces[:1])
    study = open_study(tuner, "s", f"sqlite:///{tmp_path / 's.db'}")
    storage = study._storage
    write = storage.set_trial_state_values
    finished = []

    def interrupted_write(trial_id, state, values=None):
        finished.append(state == optuna.trial.TrialState.COMPLETE)
        if sum(finished) == 2 and finished[-1]:  # Ctrl-C while the 2nd result is stored
            raise KeyboardInterrupt
        return write(trial_id, state, values)

    storage.set_trial_state_values = interrupted_write
    with pytest.raises(KeyboardInterrupt):
        tuner.optimize(study, n_trials=5)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
