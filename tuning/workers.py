"""Several workers on one study: a run's trial budget, the work loop, ``--jobs N`` processes.

A **run** is what one ``migpolicy tune`` command line asks of a study:
``--trials N`` trials, counted across every worker that runs the same command
on the same ``--study`` (the ``--jobs`` processes of this machine and the
commands on other machines). The study records its current run (user
attribute ``run``: the number of its first trial and its budget). A command
joins the current run when it asks for the same budget and the run still has
trials to hand out; otherwise it starts a new run of N trials after the
study's existing ones. So the same command on several machines runs N trials
in all; after Ctrl-C the same command finishes the interrupted run; once a
run has handed out all its trials, the same command adds N more.

A trial counts against the budget from its creation, unless it fails for
another reason than its objective (its worker was killed or interrupted): a trial of a dead
worker is failed by the heartbeat and run again by another worker (the retry
counts instead), an interrupted one is replaced. Creating a trial within the
budget is atomic among workers (the study's lock in :class:`SharedStorage`),
so the run ends with exactly N trials that have an outcome.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from migpolicy.errors import InputError, MigpolicyError, interrupt_once
from migpolicy.tuning.interrupts import ctrl_c_deferred, echoes_interrupt
from migpolicy.tuning.storage import SharedStorage, error_reason, safe_url
from migpolicy.tuning.study import Tuner, open_study

__all__ = ["BudgetSpent", "Run", "counts", "run_progress", "run_workers", "start_run", "work",
           "worker_seed"]

#: The study's user attribute that records its current run.
RUN_ATTR = "run"
#: Trials of a run that count: every one but those failed for another reason than their
#: objective (outcome ``failed``): their worker died or was interrupted, even after it had
#: recorded the outcome but before it had stored the state.
_COUNTED = """SELECT count(*) FROM trials t WHERE t.study_id = :study AND t.number >= :first
AND NOT (t.state = 'FAIL' AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a
WHERE a.trial_id = t.trial_id AND a.key = 'outcome' AND a.value_json = '"failed"'))"""
#: Seconds between progress updates drawn from the study while workers run.
POLL_S = 0.5
#: Seconds before a worker waiting for the others' last trials first looks again, then
#: twice as long each time up to ``WAIT_POLL_MAX_S``: short, because the command ends only
#: when its last worker notices they are done; bounded, because a long trial elsewhere need
#: not be polled 50 times a second.
WAIT_POLL_S, WAIT_POLL_MAX_S = 0.02, 0.1


class BudgetSpent(optuna.exceptions.OptunaError):
    """The run has handed out all its trials: this worker creates no new one."""


@dataclass(frozen=True)
class Run:
    """A run of a study: the number of its first trial and its trial budget."""

    first: int
    trials: int


def current_run(storage: SharedStorage, study_id: int) -> Run | None:
    """The run the study records, if any."""
    run = storage.get_study_user_attrs(study_id).get(RUN_ATTR)
    return Run(int(run["first"]), int(run["trials"])) if run else None


def taken(storage: SharedStorage, study_id: int, run: Run) -> int:
    """Trials of ``run`` that count against its budget (waiting, running or with an outcome)."""
    return storage.count(_COUNTED, study=study_id, first=run.first)


def _budget_guard(storage: SharedStorage, study_id: int) -> None:
    """Refuse a new trial once the study's current run has handed out its budget."""
    run = current_run(storage, study_id)
    if run is not None and taken(storage, study_id, run) >= run.trials:
        raise BudgetSpent(f"the run's {run.trials} trials are all taken")


def _fail_stale(study: optuna.Study) -> None:
    """Fail (and retry once) the trials whose worker stopped sending heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def start_run(storage: SharedStorage, study: optuna.Study, trials: int) -> Run:
    """Join the study's current run of ``trials`` trials, or start a new one (module doc)."""
    study_id = study._study_id
    with storage.lock(study.study_name):
        _fail_stale(study)
        run = current_run(storage, study_id)
        if run is None or run.trials != trials or taken(storage, study_id, run) >= trials:
            # waiting trials (the new study's baseline, retries) belong to the new run
            first = storage.count("SELECT count(*) FROM trials WHERE study_id = :study "
                                  "AND state <> 'WAITING'", study=study_id)
            run = Run(first, trials)
            storage.set_study_user_attr(study_id, RUN_ATTR, {"first": first, "trials": trials})
    return run


def counts(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a finished trial counts against its run's budget (as ``_COUNTED`` says)."""
    outcome = trial.user_attrs.get("outcome")
    return outcome == "failed" if trial.state == TrialState.FAIL else outcome is not None


def run_progress(study: optuna.Study, run: Run) -> tuple[int, float | None]:
    """Trials of ``run`` finished with an outcome, and the study's best value so far."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                        TrialState.FAIL))
    done = sum(1 for t in finished if t.number >= run.first and counts(t))
    values = [t.values[0] for t in finished if t.state == TrialState.COMPLETE and t.values]
    return done, min(values) if values else None


def worker_seed(seed: int | None, index: int) -> int | None:
    """The sampler seed of worker ``index``: independent streams from one ``--seed``."""
    if seed is None:
        return None  # each process seeds itself from the OS
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _wait_for_others(study: optuna.Study, storage: SharedStorage,
                     deadline: float | None) -> bool:
    """Wait while other workers run trials; True when a trial waits to be run here.

    A worker that dies mid-trial stops its heartbeats; after the grace period
    its trial is failed and queued again, and this worker runs it.
    """
    if storage.heartbeat_interval is None:  # no heartbeats: a dead worker cannot be told
        return False
    pause = WAIT_POLL_S
    while deadline is None or time.monotonic() < deadline:
        _fail_stale(study)
        if storage.get_n_trials(study._study_id, TrialState.WAITING):
            return True
        if not storage.get_n_trials(study._study_id, TrialState.RUNNING):
            return False
        time.sleep(pause)
        pause = min(2 * pause, WAIT_POLL_MAX_S)
    return False


def work(tuner: Tuner, study: optuna.Study, storage: SharedStorage, *,
         timeout: float | None = None,
         callbacks: list[Callable[[optuna.Study, Any], None]] | None = None) -> None:
    """Run trials of the study's current run in this process until it has handed them all out.

    Ends when every trial of the run is taken and no other worker is still
    running one (it could die and leave its trial to run here), or after
    ``timeout`` seconds. A database lost mid-run is one sentence.
    """
    storage.guard, storage.worker = _budget_guard, f"{socket.gethostname()}:{os.getpid()}"
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            try:
                tuner.optimize(study, timeout=left, callbacks=callbacks)
                return  # the timeout came first
            except BudgetSpent:
                pass
            if not _wait_for_others(study, storage, deadline):
                return
    except KeyboardInterrupt:
        storage.fail_running()
        raise
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if echoes_interrupt(exc):  # Ctrl-C inside a query
            storage.fail_running()
            raise KeyboardInterrupt from None
        raise InputError(f"--storage {safe_url(storage.url)}: lost the study storage "
                         f"mid-run: {error_reason(exc)}") from None


def _worker(index: int, tuner: Tuner, storage: SharedStorage, name: str,
            seed: int | None, timeout: float | None, errors: Any) -> None:
    """One ``--jobs`` process: its own connections, its own sampler seed, the shared run.

    The storage object is the parent's, inherited through fork with no open
    connection (the parent disposed of them): setting it up again would take
    each worker a third of a second.
    """
    # forked while the parent held Ctrl-C back (ctrl_c_deferred): take it as the command does
    signal.signal(signal.SIGINT, interrupt_once)
    try:
        study = open_study(tuner, name, storage,
                           sampler=tuner.sampler(worker_seed(seed, index)))
        work(tuner, study, storage, timeout=timeout)
    except MigpolicyError as exc:
        errors.put(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # Ctrl-C inside a driver or Optuna's writes becomes another error
        if echoes_interrupt(exc):
            storage.fail_running()
            sys.exit(130)
        raise


def run_workers(jobs: int, tuner: Tuner, storage: SharedStorage, study: optuna.Study,
                run: Run, *, seed: int | None = None,
                timeout: float | None = None,
                on_progress: Callable[[int, float | None], None] | None = None) -> None:
    """Run the study's current run in ``jobs`` forked processes; draw progress from the study.

    The processes share the traces this process loaded (fork); each opens its
    own connections. Returns when all have ended; raises the first error one
    of them met, or :class:`KeyboardInterrupt` once they have stored their
    trials after Ctrl-C.
    """
    storage.engine.dispose()  # a forked process must not share this one's connections
    context = multiprocessing.get_context("fork")
    errors = context.SimpleQueue()
    procs = [context.Process(target=_worker, name=f"migpolicy-tune-{index}",
                             args=(index, tuner, storage, study.study_name, seed, timeout,
                                   errors))
             for index in range(jobs)]
    try:
        # a Ctrl-C during a fork is dropped in Python's after-fork hooks ("Exception ignored"):
        # held back here, it is delivered once every worker exists, and they are stopped below
        with ctrl_c_deferred():
            for proc in procs:
                proc.start()
        # connect again now, while the workers run, not when the summary needs the study:
        # opening a connection takes about 0.1 s, all of it added to the run's end otherwise
        storage.engine.connect().close()
        while any(proc.is_alive() for proc in procs):
            if on_progress is not None:
                on_progress(*run_progress(study, run))
            # wakes as soon as a worker ends, not at the next tick
            multiprocessing.connection.wait([proc.sentinel for proc in procs if proc.is_alive()],
                                            timeout=POLL_S)
    except KeyboardInterrupt:
        for proc in procs:  # Ctrl-C in a terminal reached them too; a kill -INT did not
            proc.join(1.0)
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)
        for proc in procs:
            proc.join(60)
        raise
    for proc in procs:
        proc.join()
    if on_progress is not None:
        on_progress(*run_progress(study, run))
    if not errors.empty():
        raise InputError(errors.get())
    failed = [proc for proc in procs if proc.exitcode != 0]
    if failed:
        raise InputError(f"{len(failed)} of {jobs} tuning workers failed (exit status "
                         f"{', '.join(str(p.exitcode) for p in failed)}); see the messages above")
