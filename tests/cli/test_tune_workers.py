"""``migpolicy tune`` workers as users run them: console scripts sharing one study."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from migpolicy.tuning.workers import counts

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def phases(phases_trace) -> Path:
    return phases_trace("50K", 512)


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name,
                             storage=url.replace("postgresql://", "postgresql+psycopg://"))


def test_two_workers_share_the_budget_and_outlive_a_killed_one(migpolicy_exe, phases,
                                                               postgres_url):
    name, budget = f"cli-{uuid.uuid4().hex}", 14
    command = [migpolicy_exe, "tune", str(phases), "--storage", postgres_url, "--study", name,
               "--trials", str(budget), "--heartbeat", "1", "--json"]
    victim = subprocess.Popen([*command, "--seed", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    survivor = subprocess.Popen([*command, "--seed", "2"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    victim_id = f"{socket.gethostname()}:{victim.pid}"
    deadline, killed = time.monotonic() + 90, None
    while time.monotonic() < deadline and killed is None:
        time.sleep(0.05)
        try:
            trials = load(postgres_url, name).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            continue
        mine = [t for t in trials if t.user_attrs.get("worker") == victim_id]
        completed = {t.number: t.value for t in mine if t.state == TrialState.COMPLETE}
        if completed and any(t.state == TrialState.RUNNING for t in mine):
            os.kill(victim.pid, signal.SIGKILL)  # mid-trial
            killed = completed
    victim.communicate(timeout=30)
    assert killed is not None, "the victim never ran a trial"
    out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err
    data = json.loads(out)
    assert data["run"] == {"first_trial": 0, "trials": budget, "done": budget}
    trials = load(postgres_url, name).get_trials()
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    done = [t for t in trials if counts(t)]
    assert len(done) == budget  # the budget, across both workers
    assert sum(1 for t in done if t.user_attrs.get("baseline")) == 1
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # the victim's completed trials are all kept
    assert {n: trials[n].value for n in killed} == killed
    # the trial it was running was failed by the heartbeat and run again by the survivor
    lost = [t for t in trials if not counts(t)]
    assert len(lost) <= 1 and all(t.state == TrialState.FAIL for t in lost)
    for trial in lost:
        assert trial.user_attrs["worker"] == victim_id
        retry = [t for t in done if t.system_attrs.get("failed_trial") == trial.number]
        assert len(retry) == 1  # with the values the dead worker had drawn, the rest drawn anew
        assert {key: retry[0].params[key] for key in trial.params} == trial.params
        assert retry[0].user_attrs["worker"] == f"{socket.gethostname()}:{survivor.pid}"


def test_jobs_on_the_default_storage(migpolicy_exe, phases, tmp_path):
    result = subprocess.run([migpolicy_exe, "tune", str(phases), "--jobs", "2", "--trials", "6",
                             "--seed", "3"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "6 trials" in result.stdout
    assert "see the study: optuna-dashboard 'sqlite:///migpolicy-studies.db'" in result.stdout
    study = load("sqlite:///" + str(tmp_path / "migpolicy-studies.db"), "migpolicy")
    assert len(study.trials) == 6
    assert all(t.state.is_finished() and "outcome" in t.user_attrs for t in study.trials)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_a_dead_database_is_one_sentence_before_any_work(run_cli, phases):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    code, out, err = run_cli("tune", phases, "--storage",
                             f"postgresql://tuner:s3cret@127.0.0.1:{port}/studies", "--jobs", "2")
    assert time.monotonic() - start < 20
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"Error: --storage postgresql://tuner:***@127.0.0.1:{port}/studies: cannot open the "
        f"study storage: Connection refused (connection to server at \"127.0.0.1\", port "
        f"{port})"]


def test_a_worker_with_another_space_is_refused_on_postgres(run_cli, phases, postgres_url):
    name = f"cli-space-{uuid.uuid4().hex}"
    code, _, err = run_cli("tune", phases, "--storage", postgres_url, "--study", name,
                           "--trials", "2", "--json")
    assert code == 0, err
    code, out, err = run_cli("tune", phases, "--storage", postgres_url, "--study", name,
                             "--trials", "2", "--param", "engine=cpu", "--json")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "this run's space is" in err
    assert ":***@" in err and postgres_url.split("@")[0].split(":")[-1] not in err


def two_jobs_past_four_trials(exe: str, trace: Path, url: str, name: str) -> subprocess.Popen:
    """``tune --jobs 2`` of a long run in its own process group, once 4 trials have completed
    (pruned ones do not count: the tests check that completed trials are kept)."""
    proc = subprocess.Popen([exe, "tune", str(trace), "--trials", "500", "--jobs", "2",
                             "--storage", url, "--study", name, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline, done = time.monotonic() + 60, 0
    while time.monotonic() < deadline and done < 4:
        time.sleep(0.3)
        try:
            done = sum(t.state == TrialState.COMPLETE for t in load(url, name).trials)
        except (KeyError, sqlalchemy.exc.OperationalError):  # not created yet
            continue
    return proc


def test_ctrl_c_stops_every_job_and_leaves_no_trial_running(migpolicy_exe, phases,
                                                            postgres_url):
    storage, name = postgres_url, f"cli-ctrl-c-{uuid.uuid4().hex}"
    proc = two_jobs_past_four_trials(migpolicy_exe, phases, storage, name)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert out == "" and err.strip() == "migpolicy: interrupted"
    trials = load(storage, name).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4
    # every trial a worker had begun is failed; what can be left running is at most one trial
    # per worker that Ctrl-C caught inside Optuna's creating it (no value drawn, no worker yet)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    assert len(running) <= 2
    assert all(not t.params and "worker" not in t.user_attrs for t in running)


def test_ctrl_c_twice_on_sqlite_ends_promptly_with_no_trial_running(migpolicy_exe, phases,
                                                                     tmp_path):
    """A user pressing Ctrl-C twice, 0.2 s apart, with two workers sharing an SQLite file: the
    second interrupt lands in the first one's clean-up (once a deadlock in the signal handler;
    commits stuck on SQLite's locks made it 20 s or more)."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    proc = two_jobs_past_four_trials(migpolicy_exe, phases, url, "s")
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):  # all gone already
        os.killpg(proc.pid, signal.SIGINT)
    begin = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - begin < 15
    assert out == "" and err.strip() == "migpolicy: interrupted"
    trials = load(url, "s").trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4
    running = [t for t in trials if t.state == TrialState.RUNNING]
    assert all(not t.params and "worker" not in t.user_attrs for t in running)
