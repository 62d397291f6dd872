"""The tuner's study: trials replay traces, the default policy bounds the best, storage resumes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from migpolicy.errors import InputError, interrupt_once
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


def make_tuner(paths, objective="app_time", fixed=None, **kwargs) -> Tuner:
    pm = get_plugin_manager()
    return Tuner(pm=pm, hw="dram-cxl", traces=[open_trace(p, pm) for p in paths],
                 fixed=fixed or {}, objective=objective, options=ReplayOptions(epoch_ns=500_000),
                 **kwargs)


def run_study(tuner: Tuner, storage: str, trials: int, name: str = "s", seed: int = 3):
    study = open_study(tuner, name, storage, sampler=optuna.samplers.TPESampler(seed=seed))
    tuner.optimize(study, n_trials=trials)
    return study


@pytest.mark.parametrize("objective", ["app_time", "migration_cpu"])
def test_best_is_never_worse_than_the_kernel_default(traces, tmp_path, objective):
    tuner = make_tuner(traces, objective)
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=6)
    baseline = tuner.baseline().values(objective)[0]
    first = study.trials[0]
    # the first trial is the kernel default: its value is the baseline's, replayed independently
    assert first.params["placement"] == DEFAULT_POLICY["placement"]
    assert first.value == pytest.approx(baseline, rel=1e-12)
    data = summary(study, tuner, tuner.baseline())
    assert data["best_value"] <= baseline
    assert data["improvement_pct"] >= 0
    assert data["trials"] == 6
    assert sum(data[k] for k in ("replays_full", "replays_pruned", "screened_out",
                                 "replays_cached", "replays_matched", "trials_failed")) == 6


def test_objective_is_the_sum_over_traces(traces):
    one, two = make_tuner(traces[:1]), make_tuner(traces[1:])
    both = make_tuner(traces)
    policy = {"placement": "hist", "placement.demotion": "none"}
    total = both.evaluate(policy)
    parts = [one.evaluate(policy), two.evaluate(policy)]
    assert total.app_time_s == pytest.approx(sum(p.app_time_s for p in parts))
    assert total.migration_cpu_s == pytest.approx(sum(p.migration_cpu_s for p in parts))
    assert total.events == 120_000


def test_invalid_parameters_fail_the_trial_with_a_reason(traces, tmp_path):
    # a fixed value the resolver refuses makes every candidate invalid: each trial fails, named
    tuner = make_tuner(traces[:1], fixed={"batch.max_folios": -5})
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    for trial in study.trials:
        assert trial.user_attrs["outcome"] == "failed"
        assert "batch.max_folios" in trial.user_attrs["reason"]
    with pytest.raises(InputError, match="no completed trial"):
        summary(study, tuner, tuner.baseline())


def test_a_bad_candidate_is_pruned_after_its_first_trace(traces, tmp_path):
    tuner = make_tuner(traces, prefix_steps=1)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = {"placement": "none", "placement.demotion": "none", "engine": "cpu"}
    study.enqueue_trial(good)
    study.optimize(lambda t: tuner.evaluate(tuner.params(good), t).app_time_s, n_trials=1)
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


def _trials_after_interrupting_the_second_result(traces, tmp_path, interrupt) -> list:
    """The trials' states after ``interrupt()`` is called while the tuner stores its second
    result (the tuner must stop as interrupted; no prefix reports, so no trial is pruned)."""
    tuner = make_tuner(traces[:1], prefix_steps=1)
    study = open_study(tuner, "s", f"sqlite:///{tmp_path / 's.db'}")
    storage = study._storage
    write = storage.set_trial_state_values
    finished = []

    def interrupted_write(trial_id, state, values=None):
        finished.append(state == optuna.trial.TrialState.COMPLETE)
        if sum(finished) == 2 and finished[-1]:
            interrupt()
        return write(trial_id, state, values)

    storage.set_trial_state_values = interrupted_write
    with pytest.raises(KeyboardInterrupt):
        tuner.optimize(study, n_trials=5)
    return [t.state for t in study.trials]


def test_ctrl_c_inside_a_storage_write_leaves_no_trial_running(traces, tmp_path):
    def ctrl_c():
        raise KeyboardInterrupt

    states = _trials_after_interrupting_the_second_result(traces, tmp_path, ctrl_c)
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_an_error_that_hides_a_ctrl_c_still_stops_and_fails_the_trial(traces, tmp_path):
    """A real Ctrl-C lands inside a storage write, and what comes out is another error with no
    trace of the interrupt (Optuna's own "Should not reach" assertion did that): the tuner
    knows a Ctrl-C came, so it stops as interrupted and leaves no trial running."""
    def hidden_ctrl_c():
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the tuner's own handler takes it
            time.sleep(5)
        raise AssertionError("Should not reach.")  # no link to the interrupt

    states = _trials_after_interrupting_the_second_result(traces, tmp_path, hidden_ctrl_c)
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_after_a_ctrl_c_the_handler_before_tuning_is_back_unless_it_ignores_the_next(
        traces, tmp_path):
    """Called from Python, the tuner gives the interpreter's own handler back after a Ctrl-C
    (Ctrl-C works again at the prompt); under the command line's handler the first Ctrl-C
    leaves later ones ignored while the command cleans up."""
    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)

    for name in "ab":
        (tmp_path / name).mkdir()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _trials_after_interrupting_the_second_result(traces, tmp_path / "a", ctrl_c)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, interrupt_once)
    try:
        states = _trials_after_interrupting_the_second_result(traces, tmp_path / "b", ctrl_c)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_a_prefix_is_enough_to_prune_a_bad_candidate(traces, tmp_path):
    """With 4 reports per trace, a candidate that stalls on every fault (numab, 1-folio batches)
    is stopped a quarter into its only trace: it replayed about a quarter of the events."""
    tuner = make_tuner(traces[:1], prefix_steps=4)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = {"placement": "none", "placement.demotion": "none", "engine": "cpu"}
    study.optimize(lambda t: tuner.evaluate(tuner.params(good), t).app_time_s, n_trials=1)
    assert sorted(study.trials[0].intermediate_values) == [0, 1, 2]
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        tuner.evaluate(tuner.params({**good, "placement": "numab", "batch.max_folios": 1,
                                     "placement.demotion": "watermark"}), trial)
    frozen = study._storage.get_trial(trial._trial_id)
    assert frozen.user_attrs["outcome"] == "pruned"
    assert frozen.user_attrs["events_replayed"] == pytest.approx(15_000)
    assert list(frozen.intermediate_values) == [0]


def test_an_equal_candidate_takes_the_finished_result_without_a_replay(traces, tmp_path):
    tuner = make_tuner(traces[:1])
    study = open_study(tuner, "s", f"sqlite:///{tmp_path / 's.db'}")
    study.enqueue_trial(tuner.default_params())  # the baseline, proposed a second time
    tuner.optimize(study, n_trials=2)
    first, second = study.trials
    assert first.user_attrs["outcome"] == "full"
    assert second.user_attrs["outcome"] == "cached"
    assert second.user_attrs["same_as"] == 0
    assert second.value == first.value
    assert second.user_attrs["events_replayed"] == 0
    assert summary(study, tuner, tuner.baseline())["replays_cached"] == 1


@pytest.mark.parametrize("objective", ["app_time", "multi"])
def test_a_candidate_that_replays_as_a_finished_one_takes_its_values(traces, tmp_path,
                                                                      objective):
    tuner = make_tuner(traces, objective)  # two traces: matched at 2/8 of the second
    study = open_study(tuner, "s", f"sqlite:///{tmp_path / 's.db'}")
    idle = {"placement": "none", "placement.demotion": "none", "engine": "cpu"}
    for batch in (64, 512):  # a policy that never migrates: its batch size makes no difference
        study.enqueue_trial({**idle, "batch.max_folios": batch})
    tuner.optimize(study, n_trials=3)
    _, first, second = study.trials
    assert first.user_attrs["outcome"] == "full"
    assert len(first.user_attrs["checkpoints"]) == 2 * tuner.prefix_steps
    assert second.user_attrs["outcome"] == "matched"
    assert second.user_attrs["same_as"] == first.number
    assert second.values == first.values
    assert second.user_attrs["events_replayed"] == pytest.approx(60_000 + 60_000 * 2 / 8)
    assert "checkpoints" not in second.user_attrs  # only a full replay can be a twin
    # what the rest of the replay would have given
    again = tuner.evaluate(tuner.params(second.params))
    assert again.values(objective) == pytest.approx(first.values, rel=1e-12)
    data = summary(study, tuner, tuner.baseline())
    assert data["replays_matched"] == 1 and data["replays_full"] == 2


def test_of_equal_values_the_best_is_a_replayed_trial(traces):
    tuner = make_tuner(traces[:1])
    study = open_study(tuner, "s", None)
    distributions = {"placement": CategoricalDistribution(["none", "hist"])}
    for outcome in ("matched", "full", "cached"):
        study.add_trial(optuna.trial.create_trial(
            value=1.0, params={"placement": "none"}, distributions=distributions,
            user_attrs={"outcome": outcome, "app_time_s": 1.0, "migration_cpu_s": 0.0}))
    best = summary(study, tuner, tuner.baseline())["best_trial"]
    assert study.trials[best].user_attrs["outcome"] == "full"


def test_two_objectives_give_a_front_no_trial_dominates(traces, tmp_path):
    tuner = make_tuner(traces[:1], objective="multi")
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=8)
    data = summary(study, tuner, tuner.baseline())
    done = [t.values for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = [p["values"] for p in data["pareto_front"]]
    assert front and all(len(v) == 2 for v in front)
    for point in front:
        assert not any(all(a <= b for a, b in zip(other, point, strict=True)) and other != point
                       for other in done)
    assert data["best_values"] == min(front)
    assert data["baseline_values"] == pytest.approx(
        [tuner.baseline().app_time_s, tuner.baseline().migration_cpu_s])


def test_a_cpu_budget_makes_the_best_trial_a_feasible_one(traces, tmp_path):
    """Budget 0: only a policy that never migrates is feasible; the kernel default is not,
    though its application time may well be shorter."""
    tuner = make_tuner(traces[:1], cpu_budget=0.0)
    study = open_study(tuner, "s", f"sqlite:///{tmp_path / 's.db'}", sampler=tuner.sampler(1))
    study.enqueue_trial({"placement": "none", "placement.demotion": "none"})
    tuner.optimize(study, n_trials=4)
    baseline = study.trials[0]
    assert baseline.constraints["cpu_budget"] > 0
    data = summary(study, tuner, tuner.baseline())
    best = study.trials[data["best_trial"]]
    assert best.user_attrs["migration_cpu_s"] == 0
    assert best.constraints == {"cpu_budget": 0.0}
    assert data["feasible_trials"] >= 1 and data["cpu_budget"] == 0.0


def test_after_six_full_replays_every_candidate_is_predicted_first(traces, tmp_path):
    tuner = make_tuner(traces[:1], prefix_steps=1)
    study = run_study(tuner, f"sqlite:///{tmp_path / 's.db'}", trials=10)
    full = 0
    for trial in study.trials:
        outcome = trial.user_attrs["outcome"]
        assert ("predicted" in trial.user_attrs) == (full >= 6 and outcome != "cached"), \
            trial.number
        full += outcome == "full"
        if outcome == "screened":
            assert "events_replayed" in trial.user_attrs
            assert trial.user_attrs["events_replayed"] == 0
