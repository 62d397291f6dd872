"""The Optuna study of ``migpolicy tune``: trials replay traces, storage keeps them.

A :class:`Tuner` holds what a study searches over (the plugins, the profile, the
traces and the values the user fixed) and evaluates a candidate by replaying
every trace under it. The objective is the sum over the traces of the
modelled application time (``app_time``), of the migration CPU time
(``migration_cpu``), or both (``multi``: a Pareto front). A CPU budget
(migration CPU seconds per second of application time) is a constraint in
Optuna's sense: the sampler steers toward feasible candidates and the best
trial is the best feasible one.

Fewer full replays for the same answer, four ways:

* **prefix pruning**: every replay reports its objective so far
  ``prefix_steps`` times per trace (after 1/k, 2/k ... of its time span: the
  pricing is exact at those points, see :class:`~migpolicy.replay.ReplayOptions`),
  and the pruner (:class:`~migpolicy.tuning.pruning.LeaderPruner` by default)
  stops a candidate that already trails the best value reported at the same
  point by more than a margin that narrows as the prefix grows;
* **screening**: a learned model of the finished trials
  (:class:`~migpolicy.tuning.screening.Screener`) skips candidates it is
  confident are worse than the median, before any replay;
* **caching**: a candidate equal to a finished one (same values of every
  parameter that applies) takes its values without a replay;
* **matching**: a candidate whose replay has equalled a finished one's at
  every report point through 5/8 of the evaluation takes its values without
  the rest (:mod:`~migpolicy.tuning.matching`).

Each trial records ``outcome`` (``full``, ``pruned``, ``screened``, ``cached``,
``matched`` or ``failed`` with ``reason``), ``events_replayed``, and the figures
``app_time_s`` and ``migration_cpu_s`` (partial when pruned, predicted when
screened, the earlier trial's when cached or matched, with ``same_as``), plus
under a CPU budget the constraint (``Trial.set_constraint``).

:func:`open_study` creates or joins a study in any Optuna storage; the search
space's fingerprint and the replay setup are stored with the study when it is
created, and a later run with another space or setup is refused, so the values
of one study always compare.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
import pluggy
from optuna.trial import TrialState

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import find_profile
from migpolicy.replay import DEFAULT_POLICY, Checkpoint, ReplayOptions, page_ids, replay
from migpolicy.traces import Trace
from migpolicy.traces.resident import hold
from migpolicy.tuning.interrupts import echoes_interrupt, interrupt_noted, reraise_lost_interrupt
from migpolicy.tuning.matching import CHECKPOINTS_ATTR, Matched, TwinWatch
from migpolicy.tuning.pruning import LeaderPruner
from migpolicy.tuning.sampler import SnapshotTPESampler, trials_this_trial
from migpolicy.tuning.screening import Screener, candidate_key, dominated
from migpolicy.tuning.space import SearchSpace, build_space
from migpolicy.tuning.storage import SharedStorage, open_storage, safe_url

__all__ = ["DEFAULT_STORAGE", "METRICS", "OBJECTIVES", "OUTCOMES", "Figures", "Tuner", "open_study",
           "summary"]

#: Where studies live when ``--storage`` is not given: an SQLite file in the working directory.
DEFAULT_STORAGE = "sqlite:///migpolicy-studies.db"
#: Bytes of trace events the tuner holds in memory (decoded once, replayed from there).
RESIDENT_BYTES = 1 << 30
#: Objective name → what it minimises, summed over the traces.
OBJECTIVES = {"app_time": "modelled application time (s)",
              "migration_cpu": "modelled migration CPU time (s)",
              "multi": "both: the Pareto front of application time and migration CPU time"}
#: Objective name → the names of the values a trial returns (Optuna's metric names).
METRICS = {"app_time": ["app_time"], "migration_cpu": ["migration_cpu"],
           "multi": ["app_time", "migration_cpu"]}
#: Values of the ``outcome`` user attribute of a trial.
OUTCOMES = ("full", "pruned", "screened", "cached", "matched", "failed")


@dataclass(frozen=True)
class Figures:
    """What a candidate's replays added up to (so far, when stopped early)."""

    app_time_s: float = 0.0
    migration_cpu_s: float = 0.0
    events: float = 0.0

    def __add__(self, other: Figures | Checkpoint) -> Figures:
        return Figures(self.app_time_s + other.app_time_s,
                       self.migration_cpu_s + other.migration_cpu_s,
                       self.events + getattr(other, "events", 0.0))

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> Figures:
        """The figures a finished trial recorded (its events are not carried over)."""
        return cls(trial.user_attrs["app_time_s"], trial.user_attrs["migration_cpu_s"])

    @classmethod
    def predicted(cls, objective: str, values: Sequence[float]) -> Figures:
        """Figures holding ``values`` of ``objective`` (the other figure 0, no events)."""
        return cls(**{f"{metric}_s": v for metric, v in zip(METRICS[objective], values,
                                                              strict=True)})

    def values(self, objective: str) -> list[float]:
        """The objective values of these figures (one, or two for ``multi``)."""
        return [getattr(self, f"{metric}_s") for metric in METRICS[objective]]


@dataclass
class Tuner:
    """Evaluates candidate policies on a set of traces: trials, the baseline, the export.

    ``fixed`` holds the values the user set (validated, as :func:`build_context`
    resolved them); they leave the search space. ``hw`` is the profile's name
    or YAML file. ``options`` are the replay options shared by every replay
    (its ``ids`` are filled per trace). ``cpu_budget`` bounds the migration
    CPU time per second of application time. ``screening``, ``matching``,
    ``prefix_steps`` (reports per trace; 1: after each trace only) and caching
    are what save replays (module docstring). Traces whose events fit ``resident_bytes``
    together are read into memory once (:func:`migpolicy.traces.resident.hold`):
    every replay would decode them again.
    """

    pm: pluggy.PluginManager
    hw: str
    traces: Sequence[Trace]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "app_time"
    options: ReplayOptions = field(default_factory=ReplayOptions)
    cpu_budget: float | None = None
    screening: bool = True
    matching: bool = True
    prefix_steps: int = 8
    seed: int = 0
    resident_bytes: int = RESIDENT_BYTES

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"unknown objective {self.objective!r}; expected one of "
                             f"{', '.join(OBJECTIVES)}")
        if not self.traces:
            raise InputError("nothing to tune on: give at least one trace")
        if self.prefix_steps < 1:
            raise InputError(f"prefix steps {self.prefix_steps}: expected at least 1")
        if self.cpu_budget is not None and not (self.cpu_budget >= 0 and
                                                math.isfinite(self.cpu_budget)):
            raise InputError(f"CPU budget {self.cpu_budget}: expected a finite number >= 0 "
                             "(CPU seconds of migration per second of application time)")
        self.profile: Profile = find_profile(self.pm, self.hw)
        self.space: SearchSpace = build_space(self.pm, self.profile, self.fixed)
        if not len(self.space):
            raise InputError("the search space is empty: every tunable parameter is fixed "
                             "(by --policy, --param or the profile); free at least one")
        self.traces = hold(self.traces, self.resident_bytes)
        self._ids = [page_ids(trace) for trace in self.traces]  # one pass per trace, reused
        self.screener = Screener(self.space, seed=self.seed)
        self._running: int | None = None

    @property
    def directions(self) -> list[str]:
        """Optuna's study directions for the objective."""
        return ["minimize"] * len(METRICS[self.objective])

    def params(self, suggested: Mapping[str, Any]) -> dict[str, Any]:
        """The full policy of a candidate: the space's fixed values and the suggested ones."""
        return {**self.space.fixed, **suggested}

    def evaluate(self, params: Mapping[str, Any], trial: optuna.Trial | None = None,
                 finished: Sequence[optuna.trial.FrozenTrial] = ()) -> Figures:
        """The figures of ``params`` summed over the traces; prunable through ``trial``.

        Raises :class:`InputError` when ``params`` do not make a valid policy
        or a replay's figure is not finite, :class:`optuna.TrialPruned` when
        the trial's pruner stops it (the figures so far are then recorded on
        the trial), :class:`Matched` when the replay has tied one of the
        ``finished`` trials long enough (:mod:`~migpolicy.tuning.matching`).
        A trial's figures at every checkpoint are recorded on it.
        """
        ctx = build_context(pm=self.pm, hw=self.profile, params=params)
        total = Figures()
        k = self.prefix_steps if trial is not None else 1
        watch = TwinWatch(finished, k * len(self.traces))

        def reached(figures: Figures, step: int) -> None:
            twin = watch.add(figures.app_time_s, figures.migration_cpu_s)
            if twin is not None:
                raise Matched(twin, figures.events)
            self._report(trial, figures, step)

        for index, (trace, ids) in enumerate(zip(self.traces, self._ids, strict=True)):
            events = trace.meta.events or 0

            def checkpoint(done: float, points: list[Checkpoint], index=index, events=events,
                           before=total) -> None:
                partial = before + points[0] + Figures(events=done * events)
                reached(partial, index * k + round(done * k) - 1)

            result = replay(trace, ctx, replace(self.options, ids=ids, checkpoints=k,
                                                on_checkpoint=checkpoint if k > 1 else None,
                                                bounds=False))
            figures = Figures(float(result.app_time_s), float(result["migration"]["cpu_s"]),
                              float(result["events"]))
            for name, value in (("app_time", figures.app_time_s),
                                ("migration_cpu", figures.migration_cpu_s)):
                if not math.isfinite(value):
                    raise InputError(f"the {name} of trace {_name(trace)} is {value}, "
                                     "not a finite number")
            total = total + figures
            if trial is not None:
                trial.set_user_attr("traces_replayed", index + 1)
                if index + 1 < len(self.traces):
                    reached(total, (index + 1) * k - 1)
        if trial is not None:
            trial.set_user_attr(CHECKPOINTS_ATTR, [*watch.seen, [total.app_time_s,
                                                               total.migration_cpu_s]])
        return total

    def _report(self, trial: optuna.Trial | None, figures: Figures, step: int) -> None:
        """Report the objective so far at ``step``; stop the trial if the pruner says so."""
        if trial is None or len(self.directions) > 1:  # Optuna prunes single objectives only
            return
        trial.report(figures.values(self.objective)[0], step)
        if trial.should_prune():
            self._record(trial, "pruned", figures)
            raise optuna.TrialPruned(f"stopped at step {step} with "
                                     f"{figures.values(self.objective)[0]:.6g}")

    def _record(self, trial: optuna.Trial, outcome: str, figures: Figures | None = None,
                **attrs: Any) -> None:
        """Store the outcome and figures of ``trial`` as user attributes."""
        trial.set_user_attr("outcome", outcome)
        if figures is not None:
            trial.set_user_attr("app_time_s", figures.app_time_s)
            trial.set_user_attr("migration_cpu_s", figures.migration_cpu_s)
            trial.set_user_attr("events_replayed", figures.events)
            if self.cpu_budget is not None:
                value = self.constraint(figures)
                trial.set_constraint("cpu_budget", value)  # what the sampler and front read
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

    def constraint(self, figures: Figures) -> float:
        """Optuna's constraint value (<= 0: feasible): CPU per app second over the budget."""
        if self.cpu_budget is None:
            return 0.0
        if figures.app_time_s <= 0:
            return 0.0 if figures.migration_cpu_s <= 0 else math.inf
        return figures.migration_cpu_s / figures.app_time_s - self.cpu_budget

    def objective_fn(self, trial: optuna.Trial) -> float | list[float]:
        """Optuna's objective: suggest; reuse, screen or replay; record the outcome."""
        self._running = trial._trial_id
        suggested = self.space.suggest(trial)
        finished = [t for t in trials_this_trial(trial.study, (TrialState.COMPLETE,))
                    if "app_time_s" in t.user_attrs]
        key = candidate_key(suggested)
        for done in finished:
            if candidate_key(done.params) == key:
                figures = Figures.of(done)
                self._record(trial, "cached", figures, same_as=done.number)
                return self._result(figures)
        if self.screening and self.screener.fit(
                [t.params for t in finished],
                [Figures.of(t).values(self.objective) for t in finished]):
            skip, predicted = self.screener.screens(suggested)
            trial.set_user_attr("predicted", predicted)
            if skip:
                self._record(trial, "screened", Figures.predicted(self.objective, predicted))
                raise optuna.TrialPruned("screened out by the learned model")
        try:
            figures = self.evaluate(self.params(suggested), trial,
                                    finished if self.matching else ())
        except InputError as exc:
            self._record(trial, "failed", reason=str(exc))
            raise
        except Matched as match:
            figures = replace(Figures.of(match.twin), events=match.events)
            self._record(trial, "matched", figures, same_as=match.twin.number)
            return self._result(figures)
        self._record(trial, "full", figures)
        return self._result(figures)

    def _result(self, figures: Figures) -> float | list[float]:
        values = figures.values(self.objective)
        return values[0] if len(values) == 1 else values

    def sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """TPE, reading the study once per trial; it reads the trials' constraints
        (``Trial.set_constraint``) by itself."""
        return SnapshotTPESampler(seed=seed)

    def optimize(self, study: optuna.Study, **kwargs: Any) -> None:
        """``study.optimize`` on this tuner's objective; an invalid candidate fails its trial.

        On Ctrl-C the trial that was running is marked failed, even when the
        interrupt came while Optuna itself was writing to the storage, so no
        trial of this process stays running in the study; the interrupt goes on
        as :class:`KeyboardInterrupt`. An interrupt that Python had to drop
        (it landed in a finaliser, where exceptions are only printed) is raised
        again when the trial ends.
        """
        self._running = None
        callbacks = [*(kwargs.pop("callbacks", None) or ()), reraise_lost_interrupt]
        try:
            with interrupt_noted():
                study.optimize(self.objective_fn, catch=(InputError,), callbacks=callbacks,
                               **kwargs)
        except Exception as exc:
            # Optuna may turn an interrupt during its own write into another error
            if not echoes_interrupt(exc):
                raise
            self._fail_running(study)
            raise KeyboardInterrupt from None
        except KeyboardInterrupt:
            self._fail_running(study)
            raise

    def _fail_running(self, study: optuna.Study) -> None:
        """Mark the trial this process was running as failed, if it is still running."""
        backend = getattr(study._storage, "_backend", study._storage)
        if isinstance(backend, SharedStorage):
            backend.fail_running()  # knows the trial from its creation, before the objective
        elif self._running is not None:
            trial = study._storage.get_trial(self._running)
            if trial.state == TrialState.RUNNING:
                study._storage.set_trial_state_values(self._running, TrialState.FAIL)

    def default_params(self) -> dict[str, Any]:
        """The kernel-default policy's values of the searched parameters that apply to it."""
        try:
            values = build_context(pm=self.pm, hw=self.profile,
                                   params={**DEFAULT_POLICY, **self.space.fixed}).params
        except InputError:  # the fixed values rule the default out: nothing to enqueue
            return {}
        chosen = {name: values[name] for name in self.space.active(values)}
        return {name: value for name, value in chosen.items()
                if self.space.distributions[name]._contains(
                    self.space.distributions[name].to_internal_repr(value))}

    def baseline(self) -> Figures:
        """The figures of the kernel-default policy (default parameters) on the traces."""
        return self.evaluate(dict(DEFAULT_POLICY))

    def setup(self) -> dict[str, Any]:
        """What the values of one study depend on besides the space: stored and compared."""
        return {"objective": self.objective,
                "traces": [f"{_name(t)} ({t.meta.events} events)" for t in self.traces],
                "fast": str(self.options.fast), "epoch_ns": self.options.epoch_ns,
                "initial": self.options.initial, "max_events": self.options.max_events,
                "seed": self.options.seed, "cpu_budget": self.cpu_budget}


def _feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Within every constraint recorded on the trial (a trial without any is feasible)."""
    return all(value <= 0 for value in trial.constraints.values())


def _name(trace: Trace) -> str:
    return getattr(trace, "name", None) or str(getattr(trace, "path", "trace"))


def open_study(tuner: Tuner, name: str,
               storage: str | SharedStorage | None = DEFAULT_STORAGE, *,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create study ``name`` in ``storage``, or join it when its space and setup agree.

    A new study gets the kernel-default policy as its first trial (when the
    fixed values allow it), so its best value is never worse than the baseline's.
    ``storage`` is a URL or an opened :class:`SharedStorage` (heartbeats, the
    study's lock among workers), or ``None`` for a study in this process's memory.
    """
    if storage is None:  # in memory, this process only (benchmarks)
        backend, shown, lock = None, "memory", contextlib.nullcontext()
    else:
        backend = open_storage(storage) if isinstance(storage, str) else storage
        shown = safe_url(storage if isinstance(storage, str) else backend.url)
        lock = backend.lock(name)
    fingerprint, setup = tuner.space.fingerprint(), tuner.setup()
    with lock:  # workers starting at once: one creates, one baseline trial
        study = optuna.create_study(
            storage=backend, study_name=name, directions=tuner.directions, load_if_exists=True,
            sampler=sampler,
            pruner=pruner or LeaderPruner(tuner.prefix_steps * len(tuner.traces)))
        attrs = study.user_attrs
        if "fingerprint" not in attrs:
            study.set_user_attr("fingerprint", fingerprint)
            study.set_user_attr("profile", tuner.space.profile)
            study.set_user_attr("setup", setup)
            with warnings.catch_warnings():  # experimental in Optuna, stable since 3.2
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(METRICS[tuner.objective])  # names in the dashboard
            study.enqueue_trial(tuner.default_params(), user_attrs={"baseline": True},
                                skip_if_exists=True)
            return study
    if attrs["fingerprint"] != fingerprint:
        raise InputError(f"study {name!r} in {shown} searches space {attrs['fingerprint']} "
                         f"(profile {attrs.get('profile')}), but this run's space is "
                         f"{fingerprint} (profile {tuner.space.profile}); use another --study "
                         "or the same plugins, profile and fixed parameters")
    before = attrs.get("setup") or {}
    changed = sorted(k for k in setup if before.get(k) != setup[k])
    if changed:
        was = ", ".join(str(before.get(k)) for k in changed)
        raise InputError(f"study {name!r} in {shown} was run with another "
                         f"{', '.join(changed)} ({was} instead of "
                         f"{', '.join(str(setup[k]) for k in changed)}); use another --study")
    return study


def summary(study: optuna.Study, tuner: Tuner, baseline: Figures) -> dict[str, Any]:
    """The ``--json`` figures of a study: best, baseline, improvement, outcomes, front.

    The best trial is the best *feasible* complete trial (within the CPU
    budget, if any); with two objectives it is the point of the feasible
    Pareto front with the shortest application time, and the whole front is
    listed. ``replay_equivalents`` is the events replayed over all trials
    divided by the events of one full evaluation: the work the study cost,
    in full replays.
    """
    trials = study.get_trials(deepcopy=False)
    outcomes = {o: sum(1 for t in trials if t.user_attrs.get("outcome") == o) for o in OUTCOMES}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise InputError(f"study {study.study_name!r} has no completed trial yet: every trial "
                         "failed or was pruned (see `reason` of its trials)")
    feasible = [t for t in complete if _feasible(t)]
    if not feasible:
        raise InputError(f"study {study.study_name!r}: no completed trial keeps migration CPU "
                         f"within the budget of {tuner.cpu_budget:g} s per second of application "
                         "time; raise --cpu-budget or run more trials")
    front = _pareto_front(feasible)
    # among equal values a replayed trial, not one that took its values (cached, matched)
    best = min(front, key=lambda t: (tuple(t.values), t.user_attrs.get("outcome") != "full"))
    base = baseline.values(tuner.objective)
    improvement = 100.0 * (base[0] - best.values[0]) / base[0] if base[0] else 0.0
    one_pass = sum(t.meta.events or 0 for t in tuner.traces)
    replayed = sum(t.user_attrs.get("events_replayed", 0.0) for t in trials)
    data = {"best_value": best.values[0], "best_values": list(best.values),
            "best_params": dict(best.params), "best_trial": best.number,
            "baseline_value": base[0], "baseline_values": base,
            "improvement_pct": improvement, "trials": len(trials),
            "replays_full": outcomes["full"], "replays_pruned": outcomes["pruned"],
            "replays_cached": outcomes["cached"], "replays_matched": outcomes["matched"],
            "screened_out": outcomes["screened"],
            "trials_failed": outcomes["failed"],
            "replay_equivalents": replayed / one_pass if one_pass else 0.0}
    if len(tuner.directions) > 1:
        data["pareto_front"] = [{"trial": t.number, "values": list(t.values),
                                 "params": dict(t.params)}
                                for t in sorted(front, key=lambda t: tuple(t.values))]
    if tuner.cpu_budget is not None:
        data["cpu_budget"] = tuner.cpu_budget
        data["feasible_trials"] = len(feasible)
    return data


def _pareto_front(trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials no other trial dominates (all objectives minimised)."""
    import numpy as np

    values = np.asarray([t.values for t in trials], dtype=np.float64)
    return [t for t in trials if not dominated(t.values, values)]
