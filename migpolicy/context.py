"""Everything one command needs to price a migration: plugins, profile, parameters, engines.

:func:`build_context` is the one place that turns command-line choices into a
validated run: unknown engines, impossible worker counts and unknown
parameters fail here with one sentence, before any work starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError, PluginError
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.registry import find_profile
from migpolicy.params import Parameter, resolve
from migpolicy.plugin_manager import call_hook, get_plugin_manager

__all__ = ["Context", "build_context", "copy_engines", "declared_parameters"]

AUTO = "auto"


@dataclass(frozen=True)
class Context:
    """A validated run: plugin manager, hardware profile, resolved parameters."""

    pm: pluggy.PluginManager
    hw: Profile
    params: dict[str, Any]
    engines: Mapping[str, CopyEngine]

    @property
    def engine(self) -> str:
        """The engine every batch uses, or ``auto``."""
        return self.params["engine"]


def copy_engines(pm: pluggy.PluginManager) -> dict[str, CopyEngine]:
    """Every registered copy engine by name; two plugins claiming one name is an error."""
    out: dict[str, CopyEngine] = {}
    for engines in call_hook(pm, "migpolicy_copy_engines"):
        for engine in engines:
            if engine.name in out:
                raise PluginError(f"two plugins register the copy engine {engine.name!r}")
            out[engine.name] = engine
    return out


def declared_parameters(pm: pluggy.PluginManager) -> list[Parameter]:
    """Every parameter declared by the registered plugins."""
    return [p for group in call_hook(pm, "migpolicy_parameters") for p in group]


def build_context(
    *,
    plugins: Iterable[str] = (),
    hw: str | None = None,
    params: Mapping[str, Any] | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Context:
    """Load plugins and the profile, resolve parameters, and check the engine choice."""
    pm = pm or get_plugin_manager(plugins)
    profile = find_profile(pm, hw)
    values = resolve(declared_parameters(pm), params or {})
    engines = copy_engines(pm)
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
        if values["workers"] > limit:
            unit = engines[engine].worker_unit
            allowed = f"only 1 {unit}" if limit == 1 else f"1 to {limit} {unit}s"
            raise InputError(
                f"--workers {values['workers']}: engine {engine} on profile {profile.name} "
                f"allows {allowed}"
            )
    return Context(pm=pm, hw=profile, params=values, engines=engines)
