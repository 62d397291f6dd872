"""Study storage shared by workers: a URL becomes an Optuna RDB storage with heartbeats.

Every ``--storage`` URL is a SQLAlchemy database URL (``sqlite:///file.db``,
``postgresql://user@host/db`` ...). :func:`open_storage` opens it as
:class:`SharedStorage`, an :class:`optuna.storages.RDBStorage` that

* sends a heartbeat for every running trial, so a trial whose worker died
  (killed, machine lost) is marked failed once it has been silent for the
  grace period, and run again once by another worker
  (:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`);
* gives up connecting after :data:`CONNECT_TIMEOUT_S` and says in one sentence
  which URL (password hidden) and what failed;
* writes a trial's parameters and attributes in one transaction with its
  first report, and its later reports together before its state changes,
  rather than one transaction each as Optuna does
  (:meth:`SharedStorage.write_pending`);
* serialises, per study, the few steps that must not interleave between
  workers (:meth:`SharedStorage.lock`): creating the study with its baseline
  trial, starting a run, and creating a trial within a run's budget (the
  ``guard`` called before each new trial). PostgreSQL takes an advisory lock,
  SQLite a lock on the database's folder; other databases get no lock.

``postgresql://`` without a driver means psycopg 3, the driver migpolicy depends on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import random
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

from migpolicy.errors import InputError
from migpolicy.tuning.interrupts import ctrl_c_deferred

__all__ = ["CONNECT_TIMEOUT_S", "DEFAULT_HEARTBEAT_S", "SharedStorage",
           "dashboard_command", "error_reason", "open_storage", "safe_url"]

#: Seconds between heartbeats of a running trial; a trial silent for 2x this is failed.
DEFAULT_HEARTBEAT_S = 10
#: Seconds a connection attempt may take before the URL is called dead.
CONNECT_TIMEOUT_S = 10
#: Attempts at opening a new database that other workers are setting up at the same instant.
SCHEMA_ATTEMPTS = 5
#: How often a trial whose worker died is run again (a retry whose worker dies too is not).
MAX_RETRY = 1


def _url(url: str) -> sqlalchemy.engine.URL:
    try:
        return sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise InputError(f"--storage {url}: not a database URL; expected e.g. "
                         "sqlite:///studies.db or postgresql://user@host/db") from None


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit to print."""
    try:
        return _url(url).render_as_string(hide_password=True)
    except InputError:
        return url


def _driver_url(url: str) -> sqlalchemy.engine.URL:
    """``url`` with psycopg 3 as the driver of a bare ``postgresql://``."""
    parsed = _url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername in (
        "postgresql", "postgres") else parsed


def dashboard_command(url: str) -> str:
    """The shell command that opens the studies of ``url`` in optuna-dashboard (no password)."""
    return f"optuna-dashboard '{_driver_url(url).render_as_string(hide_password=True)}'"


def error_reason(exc: BaseException) -> str:
    """What failed, from a driver error: its first line without libpq's prefixes."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    for prefix in ("connection failed: ", "connection is bad: "):
        first = first.removeprefix(prefix)
    if " failed: " in first:  # 'connection to server at "h", port p failed: FATAL:  why'
        where, why = first.rsplit(" failed: ", 1)
        first = f"{why.removeprefix('FATAL:').strip()} ({where})"
    return first


class SharedStorage(RDBStorage):
    """An RDB storage that serialises study creation, runs and budgeted trial creation.

    ``guard``, when set, is called as ``guard(storage, study_id)`` under the
    study's lock before a trial is created (not when a waiting trial is
    taken): it raises to refuse the trial, e.g. when the run's budget is spent.
    """

    guard: Callable[[SharedStorage, int], None] | None = None
    #: Who runs the trials this process starts (``host:pid``), recorded as their user attribute
    #: ``worker``; ``None`` records nothing.
    worker: str | None = None
    #: The trial this process last set running (created fresh or taken from the queue).
    running: int | None = None
    #: Running trials seen without any heartbeat → when this process first saw them so
    #: (``time.monotonic``).
    _silent_since: dict[int, float] | None = None
    #: Writes of this process's running trial held back: ``(what, arguments)``.
    _pending: list[tuple[str, tuple]] | None = None

    def _set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                         distribution: optuna.distributions.BaseDistribution,
                         previous_distribution: optuna.distributions.BaseDistribution | None
                         ) -> None:
        """Hold a suggested parameter back, to be written with the trial's first report.

        Optuna writes every parameter, attribute and report of a trial in a
        transaction of its own: about 30 commits a trial, which the database
        server serves on the cores the workers run on. This storage holds those
        of the trial this process runs and writes them in one transaction with
        the trial's first report (so a trial that replays shows its parameters,
        and a dead worker's trial is run again with them), then holds the later
        reports until the trial's state changes, or until this process reads
        the study (:meth:`write_pending`). So the study never shows a finished
        trial without them. The pruner compares a trial with finished ones
        only, so other workers lose nothing by the wait; optuna-dashboard shows
        a running trial's later reports when it ends.
        """
        self._hold("param", (trial_id, param_name, param_value_internal, distribution,
                             previous_distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id == self.running:
            self._hold("user", (trial_id, key, value))
        else:
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id == self.running:
            self._hold("system", (trial_id, key, value))
        else:
            super().set_trial_system_attr(trial_id, key, value)

    def _hold(self, what: str, args: tuple) -> None:
        if self._pending is None:
            self._pending = []
        self._pending.append((what, args))

    def write_pending(self) -> None:
        """Write what was held back, in one transaction."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        with _create_scoped_session(self.scoped_session, True) as session:
            for what, args in pending:
                if what == "param":
                    self._set_trial_param_without_commit(session, *args)
                elif what == "value":
                    self._set_trial_intermediate_value_without_commit(session, *args)
                else:
                    model = (models.TrialUserAttributeModel if what == "user"
                             else models.TrialSystemAttributeModel)
                    self._set_trial_attr_without_commit(session, model, *args)

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        if trial_id != self.running:
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)
            return
        first = any(what == "param" for what, _ in self._pending or ())
        self._hold("value", (trial_id, step, intermediate_value))
        if first:  # the trial starts replaying: it shows its parameters from now on
            self.write_pending()

    def get_trial(self, trial_id: int) -> FrozenTrial:
        self.write_pending()
        return super().get_trial(trial_id)

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        self.write_pending()
        return super()._get_trials(*args, **kwargs)

    def _create_new_trial(self, study_id: int,
                          template_trial: FrozenTrial | None = None) -> FrozenTrial:
        """Create a trial; a fresh one (no template) only once ``guard`` agrees, under the lock.

        Optuna's cache in front of an RDB storage creates trials through this
        method (not ``create_new_trial``), so the guard sits here. A fresh
        trial is running from its creation: it records its worker.
        """
        if template_trial is not None:
            return super()._create_new_trial(study_id, template_trial)
        with ctrl_c_deferred():  # a trial created but not yet known here would stay running
            if self.guard is None:
                trial = super()._create_new_trial(study_id, template_trial)
            else:
                with self.lock(self.get_study_name_from_id(study_id)):
                    self.guard(self, study_id)
                    trial = super()._create_new_trial(study_id, template_trial)
            self.running = trial._trial_id
            self._first_heartbeat(trial._trial_id)
        if self.worker is not None:
            self.set_trial_user_attr(trial._trial_id, "worker", self.worker)
            trial.set_user_attr("worker", self.worker)
        return trial

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        """Set a trial's state; a waiting trial is taken under the study's lock and records
        its worker.

        Optuna takes a waiting trial by reading that it waits, then setting
        it running. PostgreSQL locks the row between the two (``FOR
        UPDATE``); SQLite does not, and two workers starting at once both took
        the same trial (the baseline) and ran it twice.
        """
        self.write_pending()
        taking = state == TrialState.RUNNING
        with self.lock(self._study_name_of(trial_id)) if taking else contextlib.nullcontext():
            changed = super().set_trial_state_values(trial_id, state, values)
        if changed and taking:
            self.running = trial_id
            self._first_heartbeat(trial_id)
            if self.worker is not None:
                self.set_trial_user_attr(trial_id, "worker", self.worker)
        elif changed and trial_id == self.running and state.is_finished():
            self.running = None  # nothing more is held back for it
        return changed

    def _study_name_of(self, trial_id: int) -> str:
        """The name of the study ``trial_id`` belongs to."""
        with self.engine.connect() as conn:
            return conn.execute(sqlalchemy.text(
                "SELECT studies.study_name FROM trials JOIN studies "
                "ON studies.study_id = trials.study_id WHERE trials.trial_id = :trial"),
                {"trial": trial_id}).scalar_one()

    def _first_heartbeat(self, trial_id: int) -> None:
        """Beat once for a trial this process just set running.

        Optuna's heartbeat thread beats only once the objective starts; a
        worker killed before that would leave a running trial without any
        heartbeat, which Optuna never counts as stale.
        """
        if self.heartbeat_interval is not None:
            self.record_heartbeat(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, and running ones without any heartbeat for a grace period.

        A trial gets its first heartbeat a moment after it is created (two
        commits): a worker killed between them leaves a running trial Optuna
        never fails. Such a trial is failed once this process has seen it
        silent for the grace period (its own clock: workers' clocks may differ).
        """
        stale = super()._get_stale_trial_ids(study_id)
        with self.engine.connect() as conn:
            silent = conn.execute(sqlalchemy.text(
                "SELECT trial_id FROM trials WHERE study_id = :study AND state = 'RUNNING' "
                "AND NOT EXISTS (SELECT 1 FROM trial_heartbeats "
                "WHERE trial_heartbeats.trial_id = trials.trial_id)"),
                {"study": study_id}).scalars().all()
        now, seen = time.monotonic(), self._silent_since or {}
        self._silent_since = {trial: seen.get(trial, now) for trial in silent}
        grace = self.grace_period or 2 * self.heartbeat_interval
        return stale + [trial for trial, since in self._silent_since.items()
                        if now - since > grace]

    def fail_running(self) -> None:
        """After Ctrl-C: fail the trial this process set running, if it still is.

        Covers Ctrl-C between a trial's creation and its objective (the tuner
        does not know the trial yet). The session is dropped first: the
        interrupt may have left it mid-commit, still holding SQLite's write
        lock, where every write of this process and of the other workers would
        wait on it. A storage that cannot take the write even then is left
        alone: the trial's heartbeats have stopped, so another worker fails it.
        """
        with contextlib.suppress(Exception):
            self.scoped_session.remove()
        self._pending = None  # the trial fails: what it held back need not be written
        try:
            if self.running is not None and (
                    self.get_trial(self.running).state == TrialState.RUNNING):
                self.set_trial_state_values(self.running, TrialState.FAIL)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError):
            pass

    def close(self) -> None:
        """Close this process's connections (an SQLite file folds its log back in on the last)."""
        self.scoped_session.remove()
        self.engine.dispose()

    def count(self, sql: str, **params: object) -> int:
        """The integer a ``SELECT count(*) ...`` over Optuna's tables returns."""
        with self.engine.connect() as conn:
            return int(conn.execute(sqlalchemy.text(sql), params).scalar_one())

    @contextlib.contextmanager
    def lock(self, study_name: str) -> Iterator[None]:
        """Hold the lock of study ``study_name`` among every process using this database."""
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"migpolicy:{study_name}".encode()).digest()[:8],
                                 "big", signed=True)
            with self.engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # the folder, not the file: closing a descriptor of the database file would drop
            # the POSIX locks SQLite holds on it in this process
            fd = os.open(Path(url.database).resolve().parent, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
        else:
            yield


def _write_ahead_log(database: str) -> None:
    """Put the SQLite file ``database`` in write-ahead-log mode (it stays so), if it can be.

    In SQLite's default mode a commit waits until no other connection reads;
    with several workers (and their heartbeat threads) reading and writing at
    once, a commit could wait out the whole busy timeout (20 s), and after
    Ctrl-C the command took that long or longer (1 stress run in 10; none in
    80 since). With a write-ahead log readers never block the writer. A file
    that cannot be opened here is left for the storage to report.
    """
    with contextlib.suppress(sqlite3.Error), contextlib.closing(
            sqlite3.connect(database, timeout=20)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def open_storage(url: str, heartbeat_s: int | None = DEFAULT_HEARTBEAT_S) -> SharedStorage:
    """Open ``url`` as a :class:`SharedStorage`; one sentence when it cannot.

    ``heartbeat_s`` ``None`` opens it without heartbeats (one worker alone on
    an SQLite file: nobody to take over its trials).
    """
    beats: dict[str, Any] = {}
    if heartbeat_s is not None:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beats = {"heartbeat_interval": heartbeat_s, "grace_period": 2 * heartbeat_s,
                     "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(
                         max_retry=MAX_RETRY)}
    parsed = _driver_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, object] = {}
    if backend == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend == "sqlite":
        connect_args = {"timeout": 20}  # workers wait for each other's writes, not fail
        if parsed.database not in (None, "", ":memory:"):
            _write_ahead_log(parsed.database)
    try:
        for attempt in itertools.count(1):
            try:
                with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return SharedStorage(
                        parsed.render_as_string(hide_password=False),
                        engine_kwargs={"connect_args": connect_args, "pool_pre_ping": True},
                        **beats)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                # workers opening a new database at once race to create Optuna's tables:
                # the losers find them created and try again
                if attempt == SCHEMA_ATTEMPTS or not (
                        isinstance(exc, sqlalchemy.exc.IntegrityError)
                        or "already exists" in str(exc)):
                    raise
                time.sleep(random.uniform(0.05, 0.3))
    except ImportError:
        raise InputError(f"--storage {safe_url(url)}: no driver for {parsed.drivername} is "
                         "installed (postgresql needs psycopg: pip install 'psycopg[binary]')"
                         ) from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise InputError(f"--storage {safe_url(url)}: cannot open the study storage: "
                         f"{error_reason(exc)}") from None
    except (ValueError, optuna.exceptions.OptunaError) as exc:
        raise InputError(f"--storage {safe_url(url)}: cannot open the study storage: "
                         f"{error_reason(exc)}") from None
