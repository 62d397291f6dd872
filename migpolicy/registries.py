"""What the registration hooks declare, gathered and checked at the boundary.

Copy engines, parameters and placement policies come from every plugin's
answer to a registration hook; this module is the one place that asks, so a
malformed answer is a :class:`PluginError` naming the plugin and hook, and two
plugins claiming one name are caught here rather than deep in a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pluggy

from migpolicy.engines import CopyEngine
from migpolicy.errors import PluginError
from migpolicy.params import Parameter
from migpolicy.placement import PlacementPolicyInfo

__all__ = ["collect", "copy_engines", "declared_parameters", "placement_policies"]

T = TypeVar("T")


def collect(pm: pluggy.PluginManager, hook: str, kind: type[T] | tuple[type, ...], what: str,
             key: Callable[[T], str], **kwargs: Any) -> dict[str, T]:
    """Every item the plugins answer ``hook`` (called with ``kwargs``) with, by name; each checked.

    ``kind`` is the type of the items, or a tuple of the types allowed.
    """
    expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
    impls = [impl for impl in getattr(pm.hook, hook).get_hookimpls()  # registration order
             if not (impl.hookwrapper or impl.wrapper)]
    plugins = [impl.plugin for impl in impls]
    out: dict[str, T] = {}
    owner: dict[str, str] = {}
    for impl in impls:
        # one plugin's answer at a time, through pluggy (so MIGPOLICY_TRACE_HOOKS logs it)
        alone = pm.subset_hook_caller(hook, [p for p in plugins if p is not impl.plugin])
        try:
            answers = alone(**kwargs)
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} raised {type(exc).__name__} in "
                              f"hook {hook}: {exc}") from exc
        answer: Any = answers[0] if answers else None
        if answer is None:
            continue
        if isinstance(answer, str | bytes) or not hasattr(answer, "__iter__"):
            raise PluginError(f"plugin {impl.plugin_name!r} answered {hook} with "
                              f"{type(answer).__name__}; expected a sequence of {expected}")
        for item in answer:
            if not isinstance(item, kind):
                raise PluginError(f"plugin {impl.plugin_name!r} answered {hook} with a "
                                  f"{type(item).__name__}; expected {expected} objects")
            name = key(item)
            if name in out:
                raise PluginError(f"plugins {owner[name]!r} and {impl.plugin_name!r} both "
                                  f"register the {what} {name!r}")
            out[name] = item
            owner[name] = impl.plugin_name
    return out


def copy_engines(pm: pluggy.PluginManager) -> dict[str, CopyEngine]:
    """Every registered copy engine by name."""
    return collect(pm, "migpolicy_copy_engines", CopyEngine, "copy engine",
                    lambda e: e.name)


def declared_parameters(pm: pluggy.PluginManager) -> list[Parameter]:
    """Every parameter declared by the registered plugins, in registration order."""
    return list(collect(pm, "migpolicy_parameters", Parameter, "parameter",
                         lambda p: p.name).values())


def placement_policies(pm: pluggy.PluginManager) -> dict[str, PlacementPolicyInfo]:
    """Every registered placement policy by name."""
    return collect(pm, "migpolicy_placement_policies", PlacementPolicyInfo,
                    "placement policy", lambda p: p.name)
