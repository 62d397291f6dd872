"""Workers sharing a study: a run's budget, joining and continuing runs, the baseline race."""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from migpolicy.errors import InputError
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions
from migpolicy.traces import open_trace
from migpolicy.tuning.storage import open_storage
from migpolicy.tuning.study import Tuner, open_study
from migpolicy.tuning.workers import Run, run_progress, run_workers, start_run, work, worker_seed

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def trace(phases_trace) -> Path:
    return phases_trace("30K", 256)


def make_tuner(trace: Path, fixed=None) -> Tuner:
    pm = get_plugin_manager()
    return Tuner(pm=pm, hw="dram-cxl", traces=[open_trace(trace, pm)], fixed=fixed or {},
                 options=ReplayOptions(epoch_ns=500_000))


def with_outcome(study: optuna.Study, run: Run) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.number >= run.first and "outcome" in t.user_attrs]


def test_a_run_is_joined_finished_and_followed_by_the_next(trace, tmp_path):
    tuner = make_tuner(trace)
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(tuner, "s", storage)
    run = start_run(storage, study, 3)
    assert run == Run(first=0, trials=3)  # the baseline waiting in the new study is in the run
    assert start_run(storage, study, 3) == run  # a second worker with the same command joins
    work(tuner, study, storage)
    assert len(with_outcome(study, run)) == 3 == len(study.trials)
    assert sum(1 for t in study.trials if t.user_attrs.get("baseline")) == 1
    best = min(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    assert run_progress(study, run) == (3, best)  # a pruned trial's partial value is no best
    # the run has handed out its trials: the same command starts the next run after them
    following = start_run(storage, study, 3)
    assert following == Run(first=3, trials=3)
    # an interrupted trial (failed, no outcome) does not count: the same command continues
    trial = study.ask()
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert start_run(storage, study, 3) == following
    work(tuner, study, storage)
    assert len(with_outcome(study, following)) == 3
    assert len(study.trials) == 3 + 1 + 3
    # a command with another budget starts its own run
    assert start_run(storage, study, 2) == Run(first=7, trials=2)


def test_jobs_share_one_budget_without_duplicates(trace, tmp_path):
    tuner = make_tuner(trace)
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(tuner, "s", storage)
    run = start_run(storage, study, 8)
    seen = []
    run_workers(2, tuner, storage, study, run, seed=5, on_progress=lambda d, b: seen.append(d))
    trials = study.get_trials()
    assert len(trials) == 8 and [t.number for t in trials] == list(range(8))
    assert all(t.state.is_finished() and "outcome" in t.user_attrs for t in trials)
    assert sum(1 for t in trials if t.user_attrs.get("baseline")) == 1
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes ran trials
    assert seen == sorted(seen) and seen[-1] == 8  # progress of the whole run, all workers
    # the two seeded samplers did not propose the same points
    proposed = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(proposed)) == len(proposed)


def test_worker_seeds_are_distinct_and_repeatable():
    seeds = [worker_seed(7, index) for index in range(16)]
    assert len(set(seeds)) == 16 and seeds == [worker_seed(7, i) for i in range(16)]
    assert worker_seed(8, 0) != seeds[0] and worker_seed(None, 3) is None


def _open_at_once(tuner: Tuner, url: str, name: str, barrier, results) -> None:
    storage = open_storage(url)
    barrier.wait()
    study = open_study(tuner, name, storage)
    results.put(start_run(storage, study, 5))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_starting_at_the_same_instant_create_one_baseline(trace, tmp_path, kind,
                                                                  request):
    url = (f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite"
           else request.getfixturevalue("postgres_url"))
    tuner, name = make_tuner(trace), f"race-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.SimpleQueue()
    procs = [context.Process(target=_open_at_once, args=(tuner, url, name, barrier, results))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * 4
    runs = {results.get() for _ in procs}
    assert runs == {Run(first=0, trials=5)}  # all four joined one run
    study = optuna.load_study(study_name=name, storage=url.replace(
        "postgresql://", "postgresql+psycopg://"))
    assert [(t.state, t.user_attrs) for t in study.trials] == [
        (TrialState.WAITING, {"baseline": True})]


def test_a_worker_with_another_space_is_refused_on_postgres(trace, postgres_url):
    name = f"space-{uuid.uuid4().hex}"
    open_study(make_tuner(trace), name, postgres_url)
    with pytest.raises(InputError, match=r"searches space [0-9a-f]{16} .* this run's space is"):
        open_study(make_tuner(trace, fixed={"engine": "cpu"}), name, postgres_url)
    password = postgres_url.split(":")[2].split("@")[0]
    with pytest.raises(InputError) as info:
        open_study(make_tuner(trace, fixed={"engine": "cpu"}), name, postgres_url)
    assert password not in str(info.value) and ":***@" in str(info.value)


def test_ctrl_c_while_the_workers_are_forked_stops_them_all(trace, tmp_path, monkeypatch):
    """Ctrl-C lands while the last worker is being forked: it is held back until every worker
    exists, then stops them (a Ctrl-C in the fork itself was lost, and the run went on)."""
    tuner = make_tuner(trace)
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(tuner, "s", storage)
    run = start_run(storage, study, 500)
    started = []
    start = multiprocessing.context.ForkProcess.start

    def start_then_ctrl_c(proc):
        start(proc)
        started.append(proc)
        if len(started) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_workers(2, tuner, storage, study, run)
    assert [proc.exitcode for proc in started] == [130, 130]
    running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert all(not t.params for t in running)
    assert len(with_outcome(study, run)) < 500
