"""The autotuner's search space, derived from the declared parameters, built without a trial.

:func:`build_space` turns every tunable :class:`~migpolicy.params.Parameter`
of the enabled plugins into an Optuna distribution: its range (narrowed to the
hardware profile by ``hw_bounds``), log scale, choices (taken from a registry
for ``engine`` and ``placement``) and conditions. Values fixed by the user (a
base policy, ``--param``) leave the space. The optional hook
``migpolicy_search_space`` may narrow a distribution, never widen it beyond
its declaration; a narrowing wider than a small profile allows is clipped to it.

Because the space exists without a trial, a grid, a learned model screening
candidates and a second worker joining a study all see the same one; its
:meth:`SearchSpace.identity` (space, profile, plugin versions) is what two
workers compare before they share a study.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from migpolicy.errors import PluginError
from migpolicy.params import Parameter
from migpolicy.plugin_manager import call_hook, plugin_infos
from migpolicy.registries import copy_engines, declared_parameters, placement_policies

if TYPE_CHECKING:
    import optuna

    from migpolicy.hardware.profile import Profile

__all__ = ["SearchSpace", "build_space"]


@dataclass(frozen=True)
class SearchSpace:
    """Tunable parameters as Optuna distributions, in an order where conditions come first.

    ``parameters`` holds the declarations (for conditions); ``fixed`` the
    values that are not searched.
    """

    distributions: dict[str, BaseDistribution]
    parameters: dict[str, Parameter]
    fixed: dict[str, Any]
    profile: str
    plugins: tuple[tuple[str, str], ...]

    def __contains__(self, name: str) -> bool:
        return name in self.distributions

    def __len__(self) -> int:
        return len(self.distributions)

    def __iter__(self) -> Iterator[str]:
        return iter(self.distributions)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask ``trial`` for every parameter active under the values chosen before it."""
        values: dict[str, Any] = dict(self.fixed)
        for name, dist in self.distributions.items():
            if self.parameters[name].active(values):
                values[name] = _suggest(trial, name, dist)
        return {name: values[name] for name in self.distributions if name in values}

    def active(self, values: Mapping[str, Any]) -> list[str]:
        """The names of the parameters that count under ``values``."""
        merged = {**self.fixed, **values}
        return [name for name in self.distributions if self.parameters[name].active(merged)]

    def identity(self) -> dict[str, Any]:
        """What two workers must agree on to share a study: space, profile, plugin versions."""
        return {
            "space": {name: json.loads(distribution_to_json(dist))
                      for name, dist in self.distributions.items()},
            "conditions": {name: {k: list(v) for k, v in self.parameters[name].when.items()}
                           for name in self.distributions if self.parameters[name].when},
            "fixed": {k: self.fixed[k] for k in sorted(self.fixed)},
            "profile": self.profile,
            "plugins": [list(p) for p in self.plugins],
        }

    def fingerprint(self) -> str:
        """A short hash of :meth:`identity`."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


def _profile_identity(hw: Profile) -> str:
    """Profile name and a digest of every value, so two edits of one name differ."""
    values = sorted((path, float(value.value)) for path, value, _ in hw.values())
    digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()[:12]
    return f"{hw.name}@{digest}"


def _choices(p: Parameter, registries: Mapping[str, tuple]) -> tuple:
    return registries[p.registry] if p.registry else (
        (False, True) if p.kind == "bool" else tuple(p.choices))


def _distribution(p: Parameter, hw: Profile | None,
                  registries: Mapping[str, tuple]) -> BaseDistribution:
    """``p`` as a distribution: on ``hw`` (hardware bounds applied), or as declared."""
    if p.kind in ("bool", "choice"):
        choices = _choices(p, registries)
        if not choices:
            raise PluginError(f"parameter {p.name} is tunable but has no choices")
        return CategoricalDistribution(list(choices))
    low, high = p.hw_bounds(hw) if p.hw_bounds and hw is not None else (p.low, p.high)
    if low is None or high is None:
        raise PluginError(f"parameter {p.name} is tunable but has no range")
    if p.kind == "int":
        low, high = int(low), int(max(low, high))
        return IntDistribution(low, high, log=p.log)
    return FloatDistribution(float(low), float(max(low, high)), log=p.log)


def _ordered(params: list[Parameter]) -> list[Parameter]:
    """Parameters with every condition's target before the parameter it conditions."""
    names = {p.name for p in params}
    placed: list[Parameter] = []
    done: set[str] = set()
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(k in done or k not in names for k in p.when)]
        if not ready:
            raise PluginError("the conditions of parameters "
                              + ", ".join(p.name for p in pending) + " form a cycle")
        for p in ready:
            placed.append(p)
            done.add(p.name)
        pending = [p for p in pending if p.name not in done]
    return placed


def _intersect(narrow: BaseDistribution, bound: BaseDistribution, name: str) -> BaseDistribution:
    """``narrow`` clipped to the hardware-bounded ``bound``; empty is a plugin error."""
    if isinstance(bound, CategoricalDistribution):
        choices = [c for c in narrow.choices if c in bound.choices]
        if not choices:
            raise PluginError(f"hook migpolicy_search_space narrows {name!r} to choices this "
                              f"profile does not offer ({list(narrow.choices)})")
        return CategoricalDistribution(choices)
    low, high = max(narrow.low, bound.low), min(narrow.high, bound.high)
    if low > high:
        raise PluginError(f"hook migpolicy_search_space narrows {name!r} to "
                          f"[{narrow.low}, {narrow.high}], outside what this profile allows "
                          f"[{bound.low}, {bound.high}]")
    return type(bound)(low, high, log=bound.log)


def _within(narrow: BaseDistribution, wide: BaseDistribution) -> bool:
    if isinstance(wide, CategoricalDistribution):
        return isinstance(narrow, CategoricalDistribution) and set(narrow.choices) <= set(
            wide.choices)
    return (type(narrow) is type(wide) and narrow.low >= wide.low and narrow.high <= wide.high
            and narrow.log == wide.log)


def build_space(pm: pluggy.PluginManager, hw: Profile,
                fixed: Mapping[str, Any] | None = None) -> SearchSpace:
    """The search space of the enabled plugins on profile ``hw``.

    ``fixed`` values (already validated) leave the space, and so does a
    parameter with one possible value on ``hw`` (such as ``gpu.streams`` on a
    profile without a GPU) or that cannot matter there (``applies``), which
    joins ``fixed``. Registry choices:
    ``engine`` takes every engine with at least one worker on ``hw``, plus
    ``auto``; ``placement`` and ``demotion`` the registered policies of that
    role (``demotion`` also ``none``).
    """
    fixed = dict(fixed or {})
    engines = copy_engines(pm)
    policies = placement_policies(pm)
    registries = {
        "engine": (*sorted(n for n, e in engines.items() if e.max_workers(hw) >= 1), "auto"),
        "placement": tuple(sorted(n for n, p in policies.items() if p.role == "promotion")),
        "demotion": ("none", *sorted(n for n, p in policies.items() if p.role == "demotion")),
    }
    declared = [p for p in declared_parameters(pm) if p.tunable and p.name not in fixed]
    distributions = {}
    for p in _ordered(declared):
        if p.applies is not None and not p.applies(hw):  # cannot matter on this profile
            fixed[p.name] = p.default
            continue
        dist = _distribution(p, hw, registries)
        if dist.single():  # one possible value on this profile: nothing to search
            fixed[p.name] = dist.to_external_repr(0) if isinstance(
                dist, CategoricalDistribution) else dist.low
        else:
            distributions[p.name] = dist
    by_name = {p.name: p for p in declared}
    for answer in call_hook(pm, "migpolicy_search_space", space=dict(distributions), hw=hw):
        for name, dist in (answer or {}).items():
            if name in fixed:  # the user fixed it: nothing left to narrow
                continue
            if name not in distributions:
                raise PluginError(f"hook migpolicy_search_space narrows {name!r}, which is not "
                                  "a tunable parameter of the space")
            allowed = _distribution(by_name[name], None, registries)
            if not _within(dist, allowed):
                raise PluginError(f"hook migpolicy_search_space widens {name!r} beyond its "
                                  f"declaration ({allowed})")
            distributions[name] = _intersect(dist, distributions[name], name)
    plugins = tuple(sorted((i.name, i.version) for i in plugin_infos(pm)))
    return SearchSpace(distributions=distributions,
                       parameters={p.name: p for p in declared},
                       fixed=fixed, profile=_profile_identity(hw), plugins=plugins)
