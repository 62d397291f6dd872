"""Study storages: URLs with hidden passwords, dead databases in one sentence, the study lock."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import uuid
import wsgiref.util
from urllib.parse import quote

import optuna
import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import TrialState

from migpolicy.errors import InputError
from migpolicy.tuning import storage as storage_module
from migpolicy.tuning.storage import dashboard_command, open_storage, safe_url

optuna.logging.set_verbosity(optuna.logging.ERROR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_url(url: str, **parts: str) -> str:
    return sqlalchemy.engine.make_url(url).set(**parts).render_as_string(hide_password=False)


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
               max_size=20),
       st.sampled_from(["postgresql", "postgresql+psycopg", "mysql"]))
def test_a_printed_url_never_shows_the_password(secret, scheme):
    password = "Zq" + secret  # "Zq" appears nowhere else in the URL
    url = f"{scheme}://tuner:{quote(password, safe='')}@db.lab:5432/studies"
    shown = safe_url(url)
    assert password not in shown and quote(password, safe="") not in shown
    assert shown == f"{scheme}://tuner:***@db.lab:5432/studies"
    assert "Zq" not in dashboard_command(url)


def test_the_dashboard_command_names_the_driver_migpolicy_installs():
    assert dashboard_command("postgresql://tuner:pw@db/studies") == (
        "optuna-dashboard 'postgresql+psycopg://tuner:***@db/studies'")
    assert dashboard_command("sqlite:///runs.db") == "optuna-dashboard 'sqlite:///runs.db'"


def refused(url: str, within_s: float) -> str:
    """The one sentence opening ``url`` gives, checked to come within ``within_s`` seconds."""
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        open_storage(url)
    assert time.monotonic() - start < within_s
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"--storage {safe_url(url)}: ")
    return message


def test_nothing_listening_is_one_sentence():
    url = f"postgresql://tuner:s3cret-pw@127.0.0.1:{free_port()}/studies"
    message = refused(url, within_s=5)
    assert "Connection refused" in message and "s3cret-pw" not in message


def test_a_server_that_never_answers_times_out(monkeypatch):
    monkeypatch.setattr(storage_module, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as silent:  # accepts connections, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"postgresql://tuner:s3cret-pw@127.0.0.1:{silent.getsockname()[1]}/studies"
        assert "timeout expired" in refused(url, within_s=10)


def test_an_unknown_host_and_a_missing_driver_are_one_sentence():
    assert "nosuchhost.invalid" in refused("postgresql://u:pw@nosuchhost.invalid/db", 30)
    assert "no driver for mysql" in refused("mysql://u:pw@127.0.0.1/db", 5)
    assert "not a database URL" in refused("studies.db", 5)


def test_wrong_password_and_unknown_database_name_what_failed(postgres_url):
    url = sqlalchemy.engine.make_url(postgres_url)
    wrong = with_url(postgres_url, password="wrong-password")
    try:
        message = refused(wrong, within_s=10)
    except pytest.fail.Exception:
        pytest.skip("this server does not ask for a password")
    assert f'password authentication failed for user "{url.username}"' in message
    assert "wrong-password" not in message and url.password not in message
    message = refused(with_url(postgres_url, database="migpolicy_nosuch"), within_s=10)
    assert 'database "migpolicy_nosuch" does not exist' in message
    assert url.password not in message


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_study_lock_excludes_other_holders(kind, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite"
           else request.getfixturevalue("postgres_url"))
    first, second = open_storage(url), open_storage(url)  # two workers: separate connections
    name, events = f"lock-{uuid.uuid4().hex}", []

    def other() -> None:
        with second.lock(name):
            events.append("second")

    with first.lock(name):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waits for the first holder
        events.append("first")
    thread.join(10)
    assert events == ["first", "second"]
    if kind == "postgresql":  # a lock per study (SQLite: one per database folder)
        with first.lock(name), second.lock(f"{name}-other"):
            pass


@pytest.mark.filterwarnings("ignore:Heartbeat of storage",
                            "ignore::optuna.exceptions.ExperimentalWarning")
def test_a_trial_beats_from_its_creation_and_a_silent_one_is_failed(tmp_path):
    """A worker killed before Optuna's heartbeat thread started leaves no trial running."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, heartbeat_s=1)
    study = optuna.create_study(storage=storage)
    created = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert storage.count("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t",
                         t=created._trial_id) == 1
    # a trial whose worker died between creating it and its first heartbeat
    silent = optuna.create_study(storage=url, study_name=study.study_name,
                                 load_if_exists=True).ask()
    optuna.storages.fail_stale_trials(study)  # first seen silent: not failed yet
    assert storage.get_trial(silent._trial_id).state == TrialState.RUNNING
    time.sleep(2.5)  # past the grace period (2 heartbeats)
    optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(silent._trial_id).state == TrialState.FAIL


@pytest.mark.filterwarnings("ignore:Heartbeat of storage",
                            "ignore::optuna.exceptions.ExperimentalWarning")
def test_a_dead_workers_trial_is_failed_and_queued_again(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_s=1))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.report(0.3, 0)  # it replays: its parameters are stored with this first report
    trial.report(0.2, 1)
    study._storage.record_heartbeat(trial._trial_id)  # then the worker dies: no more beats
    time.sleep(4)  # past the grace period (2 heartbeats; the database counts whole seconds)
    other = optuna.load_study(study_name=study.study_name,
                              storage=open_storage(url, heartbeat_s=1))  # another worker
    optuna.storages.fail_stale_trials(other)
    states = [t.state for t in other.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert other.trials[1].params == trial.params
    assert other.trials[1].system_attrs["failed_trial"] == trial.number


def test_a_trials_writes_go_together_with_its_first_report_and_when_it_ends(tmp_path):
    """Optuna writes each parameter, attribute and report in a transaction of its own; the
    storage writes a trial's with its first report, and the later reports when it ends."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, None)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    commits, writing = [], []  # transactions that wrote something

    def statement(conn, cursor, sql, *args):
        writing.append(sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"))

    def commit(conn):
        if any(writing):
            commits.append(1)
        writing.clear()

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", statement)
    sqlalchemy.event.listen(storage.engine, "commit", commit)
    trial = study.ask()
    created = len(commits)
    values = {name: trial.suggest_float(name, 0, 1) for name in "abcde"}
    trial.set_user_attr("note", "held")
    assert len(commits) == created
    other = optuna.storages.RDBStorage(url)
    assert other.get_trial(trial._trial_id).params == {}
    for step in range(4):
        trial.report(0.5 - step / 10, step)
    assert len(commits) == created + 1  # the parameters, the attribute, the first report
    replaying = other.get_trial(trial._trial_id)
    assert replaying.params == values and replaying.user_attrs == {"note": "held"}
    assert replaying.intermediate_values == {0: 0.5}
    trial.set_user_attr("outcome", "full")
    study.tell(trial, 1.0)
    assert len(commits) == created + 3  # then the later reports and attribute, the state
    stored = optuna.load_study(study_name=study.study_name, storage=url).trials[0]
    assert stored.params == values and stored.user_attrs == {"note": "held", "outcome": "full"}
    assert stored.intermediate_values == {0: 0.5, 1: 0.4, 2: 0.3, 3: 0.2}
    assert stored.state == TrialState.COMPLETE and stored.value == 1.0


def test_a_pruned_trial_ends_with_its_last_report(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=open_storage(url, None))
    trial = study.ask()
    trial.suggest_int("n", 1, 9)
    trial.report(3.0, 0)
    trial.report(2.0, 1)
    study.tell(trial, state=TrialState.PRUNED)
    stored = optuna.load_study(study_name=study.study_name, storage=url).trials[0]
    assert stored.state == TrialState.PRUNED and stored.value == 2.0
    assert stored.intermediate_values == {0: 3.0, 1: 2.0}


def test_a_finished_trial_refuses_a_late_write_at_once(tmp_path):
    """Only the running trial's writes are held back: a write to a finished one fails where
    it is made, as Optuna's own storage would."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=open_storage(url, None))
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        study._storage.set_trial_user_attr(trial._trial_id, "late", 1)
    assert study.trials[0].user_attrs == {}


def test_a_finished_trial_keeps_parameters_it_never_reported_after(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=open_storage(url, None))
    study.optimize(lambda t: t.suggest_int("n", 1, 9) + t.suggest_float("x", 0, 1), n_trials=3)
    stored = optuna.load_study(study_name=study.study_name, storage=url).trials
    assert [t.params for t in stored] == [t.params for t in study.trials]
    assert all(set(t.params) == {"n", "x"} for t in stored)


def test_optuna_dashboard_serves_the_study(postgres_url):
    dashboard = pytest.importorskip("optuna_dashboard")
    name = f"dash-{uuid.uuid4().hex}"
    storage = open_storage(postgres_url)
    study = optuna.create_study(storage=storage, study_name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    app = dashboard.wsgi(storage)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    environ = {"PATH_INFO": f"/api/studies/{study._study_id}", "QUERY_STRING": "after=0"}
    wsgiref.util.setup_testing_defaults(environ)  # a GET as a WSGI server hands it over
    body = json.loads(b"".join(app(environ, start_response)))
    assert answer["status"].startswith("200")
    assert body["name"] == name
    assert len(body["trials"]) == 3
    assert [t["number"] for t in body["trials"]] == [0, 1, 2]


def test_an_sqlite_study_file_keeps_a_write_ahead_log(tmp_path):
    """Readers then never block a worker's commit (in SQLite's default mode a reader and a
    writer could wait on each other for the whole busy timeout after Ctrl-C)."""
    path = tmp_path / "studies.db"
    optuna.create_study(storage=open_storage(f"sqlite:///{path}"), study_name="s")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(InputError, match="cannot open the study storage"):
        open_storage(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_two_workers_never_both_take_one_waiting_trial(tmp_path):
    """SQLite does not lock the row Optuna reads before taking a waiting trial: two workers
    starting at once both ran the baseline trial (then one could not store it)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    first, second = open_storage(url, heartbeat_s=5), open_storage(url, heartbeat_s=5)
    study = optuna.create_study(storage=first)
    doubles = 0
    for _ in range(20):
        study.enqueue_trial({})
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]._trial_id
        start, taken = threading.Barrier(2), []

        def take(storage, trial=waiting, start=start, taken=taken):
            start.wait()
            taken.append(storage.set_trial_state_values(trial, TrialState.RUNNING))

        workers = [threading.Thread(target=take, args=(s,)) for s in (first, second)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        doubles += sum(taken) != 1
        first.set_trial_state_values(waiting, TrialState.FAIL)
    assert doubles == 0
