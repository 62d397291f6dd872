"""The Optuna study of ``migpolicy tune``: trials replay traces, storage keeps them.

A :class:`Tuner` holds what a study searches over (the plugins, the profile, the
traces and the values the user fixed) and evaluates a candidate by replaying
every trace under it: the objective is the sum over the traces of the modelled
application time or of the migration CPU time. After each trace the partial
sum is reported to the trial (the trace's index is the step), so a pruner
(Optuna's ``MedianPruner``) stops a candidate that is already worse than the
median after its first traces. Each trial records ``outcome`` (``full``,
``pruned`` or ``failed``) and, when it failed, ``reason``.

:func:`open_study` creates or joins a study in any Optuna storage; the search
space's fingerprint and the replay setup are stored with the study when it is
created, and a later run with another space or setup is refused, so the values
of one study always compare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
import pluggy

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import find_profile
from migpolicy.replay import DEFAULT_POLICY, ReplayOptions, ReplayResult, page_ids, replay
from migpolicy.traces import Trace
from migpolicy.tuning.space import SearchSpace, build_space
from migpolicy.tuning.storage import SharedStorage, open_storage, safe_url

__all__ = ["DEFAULT_STORAGE", "OBJECTIVES", "Tuner", "objective_value", "open_study", "summary"]

#: Where studies live when ``--storage`` is not given: an SQLite file in the working directory.
DEFAULT_STORAGE = "sqlite:///migpolicy-studies.db"
#: Objective name → what it sums over the traces (both minimised).
OBJECTIVES = {"app_time": "modelled application time (s)",
              "migration_cpu": "modelled migration CPU time (s)"}
#: Values of the ``outcome`` user attribute of a trial.
OUTCOMES = ("full", "pruned", "failed")


def objective_value(result: ReplayResult, objective: str) -> float:
    """The figure of one replay that ``objective`` minimises."""
    if objective == "app_time":
        return float(result.app_time_s)
    if objective == "migration_cpu":
        return float(result["migration"]["cpu_s"])
    raise InputError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")


@dataclass
class Tuner:
    """Evaluates candidate policies on a set of traces: trials, the baseline, the export.

    ``fixed`` holds the values the user set (validated, as :func:`build_context`
    resolved them); they leave the search space. ``hw`` is the profile's name
    or YAML file. ``options`` are the replay options shared by every replay
    (its ``ids`` are filled per trace).
    """

    pm: pluggy.PluginManager
    hw: str
    traces: Sequence[Trace]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "app_time"
    options: ReplayOptions = field(default_factory=ReplayOptions)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            objective_value(ReplayResult({}), self.objective)  # raises the error naming it
        if not self.traces:
            raise InputError("nothing to tune on: give at least one trace")
        self.profile: Profile = find_profile(self.pm, self.hw)
        self.space: SearchSpace = build_space(self.pm, self.profile, self.fixed)
        if not len(self.space):
            raise InputError("the search space is empty: every tunable parameter is fixed "
                             "(by --policy, --param or the profile); free at least one")
        self._ids = [page_ids(trace) for trace in self.traces]  # one pass per trace, reused

    def params(self, suggested: Mapping[str, Any]) -> dict[str, Any]:
        """The full policy of a candidate: the space's fixed values and the suggested ones."""
        return {**self.space.fixed, **suggested}

    def evaluate(self, params: Mapping[str, Any], trial: optuna.Trial | None = None) -> float:
        """The objective of ``params`` summed over the traces; prunable through ``trial``.

        Raises :class:`InputError` when ``params`` do not make a valid policy
        or a replay's figure is not finite, :class:`optuna.TrialPruned` when
        the trial's pruner stops it.
        """
        ctx = build_context(pm=self.pm, hw=self.hw, params=params)
        total = 0.0
        for step, (trace, ids) in enumerate(zip(self.traces, self._ids, strict=True)):
            value = objective_value(replay(trace, ctx, replace(self.options, ids=ids)),
                                    self.objective)
            if not math.isfinite(value):
                raise InputError(f"the {self.objective} of trace {_name(trace)} is {value}, "
                                 "not a finite number")
            total += value
            if trial is not None:
                trial.set_user_attr("traces_replayed", step + 1)
                if step + 1 < len(self.traces):
                    trial.report(total, step)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"stopped after {step + 1} of "
                                                 f"{len(self.traces)} traces")
        return total

    def objective_fn(self, trial: optuna.Trial) -> float:
        """Optuna's objective: suggest, replay, record the outcome."""
        self._running = trial._trial_id
        suggested = self.space.suggest(trial)
        try:
            value = self.evaluate(self.params(suggested), trial)
        except optuna.TrialPruned:
            trial.set_user_attr("outcome", "pruned")
            raise
        except InputError as exc:
            trial.set_user_attr("outcome", "failed")
            trial.set_user_attr("reason", str(exc))
            raise
        trial.set_user_attr("outcome", "full")
        return value

    def optimize(self, study: optuna.Study, **kwargs: Any) -> None:
        """``study.optimize`` on this tuner's objective; an invalid candidate fails its trial.

        On Ctrl-C the trial that was running is marked failed, even when the
        interrupt came while Optuna itself was writing to the storage, so no
        trial of this process stays running in the study; the interrupt goes on
        as :class:`KeyboardInterrupt`.
        """
        self._running = None
        try:
            study.optimize(self.objective_fn, catch=(InputError,), **kwargs)
        except Exception as exc:
            # Optuna may turn an interrupt during its own write into another error
            if not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            self._fail_running(study)
            raise KeyboardInterrupt from None
        except KeyboardInterrupt:
            self._fail_running(study)
            raise

    def _fail_running(self, study: optuna.Study) -> None:
        """Mark the trial this process was running as failed, if it is still running."""
        if self._running is not None:
            trial = study._storage.get_trial(self._running)
            if trial.state == optuna.trial.TrialState.RUNNING:
                study._storage.set_trial_state_values(self._running,
                                                      optuna.trial.TrialState.FAIL)

    def default_params(self) -> dict[str, Any]:
        """The kernel-default policy's values of the searched parameters that apply to it."""
        try:
            values = build_context(pm=self.pm, hw=self.hw,
                                   params={**DEFAULT_POLICY, **self.space.fixed}).params
        except InputError:  # the fixed values rule the default out: nothing to enqueue
            return {}
        chosen = {name: values[name] for name in self.space.active(values)}
        return {name: value for name, value in chosen.items()
                if self.space.distributions[name]._contains(
                    self.space.distributions[name].to_internal_repr(value))}

    def baseline(self) -> float:
        """The objective of the kernel-default policy (default parameters) on the traces."""
        return self.evaluate(dict(DEFAULT_POLICY))

    def setup(self) -> dict[str, Any]:
        """What the values of one study depend on besides the space: stored and compared."""
        return {"objective": self.objective,
                "traces": [f"{_name(t)} ({t.meta.events} events)" for t in self.traces],
                "fast": str(self.options.fast), "epoch_ns": self.options.epoch_ns,
                "initial": self.options.initial, "max_events": self.options.max_events,
                "seed": self.options.seed}


def _name(trace: Trace) -> str:
    return getattr(trace, "name", None) or str(getattr(trace, "path", "trace"))


def open_study(tuner: Tuner, name: str, storage: str | SharedStorage = DEFAULT_STORAGE, *,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create study ``name`` in ``storage``, or join it when its space and setup agree.

    A new study gets the kernel-default policy as its first trial (when the
    fixed values allow it), so its best value is never worse than the baseline's.
    ``storage`` is a URL or an opened :class:`SharedStorage` (heartbeats, the
    study's lock among workers).
    """
    backend = open_storage(storage) if isinstance(storage, str) else storage
    shown = safe_url(storage if isinstance(storage, str) else backend.url)
    fingerprint, setup = tuner.space.fingerprint(), tuner.setup()
    with backend.lock(name):  # workers starting at once: one creates, one baseline trial
        study = optuna.create_study(
            storage=backend, study_name=name, direction="minimize", load_if_exists=True,
            sampler=sampler, pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3))
        attrs = study.user_attrs
        if "fingerprint" not in attrs:
            study.set_user_attr("fingerprint", fingerprint)
            study.set_user_attr("profile", tuner.space.profile)
            study.set_user_attr("setup", setup)
            study.enqueue_trial(tuner.default_params(), user_attrs={"baseline": True},
                                skip_if_exists=True)
            return study
    if attrs["fingerprint"] != fingerprint:
        raise InputError(f"study {name!r} in {shown} searches space {attrs['fingerprint']} "
                         f"(profile {attrs.get('profile')}), but this run's space is "
                         f"{fingerprint} (profile {tuner.space.profile}); use another --study "
                         "or the same plugins, profile and fixed parameters")
    if attrs.get("setup") != setup:
        before = attrs.get("setup") or {}
        changed = sorted(k for k in setup if before.get(k) != setup[k])
        was = ", ".join(str(before.get(k)) for k in changed)
        raise InputError(f"study {name!r} in {shown} was run with another "
                         f"{', '.join(changed)} ({was} instead of "
                         f"{', '.join(str(setup[k]) for k in changed)}); use another --study")
    return study


def summary(study: optuna.Study, baseline: float) -> dict[str, Any]:
    """The ``--json`` figures of a study: best, baseline, improvement, trial outcomes."""
    trials = study.get_trials(deepcopy=False)
    outcomes = {o: sum(1 for t in trials if t.user_attrs.get("outcome") == o) for o in OUTCOMES}
    try:
        best = study.best_trial
    except ValueError:
        raise InputError(f"study {study.study_name!r} has no completed trial yet: every trial "
                         "failed or was pruned (see `reason` of its trials)") from None
    improvement = 100.0 * (baseline - best.value) / baseline if baseline else 0.0
    return {"best_value": best.value, "best_params": dict(best.params),
            "best_trial": best.number, "baseline_value": baseline,
            "improvement_pct": improvement, "trials": len(trials),
            "replays_full": outcomes["full"], "replays_pruned": outcomes["pruned"],
            "trials_failed": outcomes["failed"], "screened_out": 0}
