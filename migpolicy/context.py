"""Everything one command needs to price a migration: plugins, profile, parameters, engines.

:func:`build_context` is the one place that turns command-line choices into a
validated run: unknown engines or placement policies, impossible worker counts
and unknown parameters fail here with one sentence, before any work starts.
A :class:`Context` also carries the per-context cache where plugins keep what
they load once (a learned model), so pricing many times pays for it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError
from migpolicy.folios import Reason
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import find_profile
from migpolicy.params import resolve
from migpolicy.pipeline import Report, price_uniform, run_pipeline
from migpolicy.placement import PlacementPolicy, PlacementPolicyInfo
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import copy_engines, declared_parameters, placement_policies

__all__ = ["Context", "build_context", "copy_engines", "declared_parameters"]

AUTO = "auto"
NO_DEMOTION = "none"


@dataclass(frozen=True)
class Context:
    """A validated run: plugin manager, hardware profile, resolved parameters, registries."""

    pm: pluggy.PluginManager
    hw: Profile
    params: dict[str, Any]
    engines: Mapping[str, CopyEngine]
    policies: Mapping[str, PlacementPolicyInfo] = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def engine(self) -> str:
        """The engine every batch uses, or ``auto``."""
        return self.params["engine"]

    def price(self, folios: np.ndarray, *, initiator: int = 0) -> Report:
        """Price ``folios`` (of one or many epochs) through the stage pipeline."""
        return run_pipeline(self.pm, folios, self.hw, self.params, initiator=initiator,
                            engines=self.engines, cache=self.cache)

    def price_uniform(self, folio_size: int, count: int, *, src: int = 0, dst: int | None = None,
                      reason: Reason = Reason.SYSCALL) -> Report:
        """Price ``count`` identical folios (see :func:`migpolicy.pipeline.price_uniform`)."""
        return price_uniform(self.pm, folio_size, count, self.hw, self.params, src=src,
                             dst=dst, reason=reason, engines=self.engines, cache=self.cache)

    def placement_policies(self, seed: int = 0) -> list[PlacementPolicy]:
        """New policy objects for one replay: the promotion policy, then the demotion one."""
        names = [self.params["placement"]]
        if self.params["placement.demotion"] != NO_DEMOTION:
            names.append(self.params["placement.demotion"])
        return [self.policies[name].factory(self.params, self.hw, seed) for name in names]


def build_context(
    *,
    plugins: Iterable[str] = (),
    hw: str | Profile | None = None,
    params: Mapping[str, Any] | None = None,
    pm: pluggy.PluginManager | None = None,
    default_workers: int | None = None,
) -> Context:
    """Load plugins and the profile, resolve parameters, and check the engine choice.

    ``hw`` is a profile's name or file (``--hw``), or a profile already loaded
    (a tuner building a context per trial does not read the profile files again).

    ``params`` may hold ``workers``, the worker count of the fixed engine (what
    ``--workers`` sets): it becomes that engine's worker parameter
    (``mt.threads``, ``dma.channels`` ...); ``default_workers`` sets it when
    neither is given. A worker parameter nobody set is capped at what its
    engine has on the profile, so a default never exceeds a small machine;
    one set beyond it is an error.
    """
    pm = pm or get_plugin_manager(plugins)
    profile = hw if isinstance(hw, Profile) else find_profile(pm, hw)
    engines = copy_engines(pm)
    given = dict(params or {})
    typed = "--workers"  # how the user named the fixed engine's worker count, for errors
    if "workers" in given:
        given = _workers_alias(given, engines)
    fixed = engines.get(given.get("engine", "cpu"))
    if fixed is not None and fixed.workers_param in given and "workers" not in (params or {}):
        typed = f"--param {fixed.workers_param}="
    if default_workers is not None and fixed is not None and fixed.workers_param:
        given.setdefault(fixed.workers_param, default_workers)
    try:
        values = resolve(declared_parameters(pm), given)
    except InputError as exc:  # name the option the user typed, not the parameter behind it
        key = f"parameter {fixed.workers_param} " if fixed is not None else None
        if "workers" in (params or {}) and key and str(exc).startswith(key):
            raise InputError("--workers " + str(exc).removeprefix(key)) from None
        raise
    for engine in engines.values():
        key = engine.workers_param
        if key and key not in given and key in values:
            values[key] = max(1, min(int(values[key]), engine.max_workers(profile)))
    policies = placement_policies(pm)
    _check_policy(values, policies, "placement", "promotion")
    if values["placement.demotion"] != NO_DEMOTION:
        _check_policy(values, policies, "placement.demotion", "demotion")
    engine = values["engine"]
    if engine != AUTO:
        if engine not in engines:
            known = ", ".join(sorted([*engines, AUTO]))
            raise InputError(f"--engine {engine}: unknown copy engine (known: {known})")
        limit = engines[engine].max_workers(profile)
        if limit < 1:
            raise InputError(
                f"--engine {engine}: profile {profile.name} has no {engine} engine"
            )
        workers = engines[engine].workers(values)
        if workers > limit:
            unit = engines[engine].worker_unit
            raise InputError(
                f"{typed}{'' if typed.endswith('=') else ' '}{workers}: engine {engine} on "
                f"profile {profile.name} allows at most {limit} {unit}{'s' if limit > 1 else ''}"
            )
    return Context(pm=pm, hw=profile, params=values, engines=engines, policies=policies)


def _workers_alias(given: dict[str, Any], engines: Mapping[str, CopyEngine]) -> dict[str, Any]:
    """Turn ``workers`` into the fixed engine's own worker parameter."""
    workers = given.pop("workers")
    name = given.get("engine", "cpu")
    engine = engines.get(name)
    if engine is None:
        if name == AUTO:
            raise InputError("--workers needs a fixed engine: auto chooses the worker count "
                             "of each batch (up to mt.threads, dma.channels, gpu.streams)")
        return given  # the unknown engine is reported below
    try:
        count = int(str(workers).strip()) if not isinstance(workers, bool) else 0
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(f"--workers {workers}: expected a whole number of "
                         f"{engine.worker_unit}s, at least 1")
    if not engine.workers_param:
        if count != 1:
            raise InputError(f"--workers {workers}: engine {name} allows only 1 "
                             f"{engine.worker_unit}")
        return given
    key = engine.workers_param
    if key in given and str(given[key]) != str(workers):
        raise InputError(f"--workers {workers} and --param {key}={given[key]} set the same "
                         "value twice; give one")
    given[key] = count
    return given


def _check_policy(values: Mapping[str, Any], policies: Mapping[str, PlacementPolicyInfo],
                  key: str, role: str) -> None:
    name = values[key]
    if name not in policies or policies[name].role != role:
        known = sorted(n for n, p in policies.items() if p.role == role)
        if role == "demotion":
            known.insert(0, NO_DEMOTION)
        raise InputError(f"parameter {key}={name}: unknown {role} policy "
                         f"(known: {', '.join(known)})")
