"""Building the plugin manager: built-ins, entry points, ``-p MODULE``, tracing.

Built-in plugins are ordinary modules implementing the same hooks a third
party would, listed once in :data:`BUILTIN_PLUGINS`. Third-party plugins
register under the entry-point group ``migpolicy``; ``MIGPOLICY_PLUGINS``
(comma-separated names) restricts which of those load; ``-p MODULE`` loads one
more. ``MIGPOLICY_TRACE_HOOKS=1`` logs every hook call with its duration to
stderr. Every failure is a :class:`PluginError` naming the plugin and hook.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from migpolicy import hookspecs
from migpolicy.errors import PluginError

__all__ = ["BUILTIN_PLUGINS", "PluginInfo", "call_hook", "get_plugin_manager", "plugin_infos"]

#: Every built-in plugin, in registration order (kernel defaults first).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "migpolicy.plugins.kernel_isolate",
    "migpolicy.plugins.kernel_batch",
    "migpolicy.plugins.kernel_remap",
    "migpolicy.plugins.engine_cpu",
    "migpolicy.plugins.engine_mt",
    "migpolicy.plugins.engine_dma",
    "migpolicy.plugins.engine_gpu",
    "migpolicy.plugins.engine_dsa",
    "migpolicy.plugins.engine_sdxi",
    "migpolicy.plugins.learned_copy",
    "migpolicy.plugins.auto_select",
    "migpolicy.plugins.account",
    "migpolicy.plugins.profiles",
    "migpolicy.plugins.placement_none",
    "migpolicy.plugins.placement_numab",
    "migpolicy.plugins.placement_hist",
    "migpolicy.plugins.placement_damos",
    "migpolicy.plugins.placement_watermark",
    "migpolicy.traces.fmt_native",
    "migpolicy.traces.fmt_damon",
    "migpolicy.traces.fmt_perf",
    "migpolicy.traces.fmt_lackey",
    "migpolicy.traces.fmt_champsim",
    "migpolicy.traces.generators",
)

ENTRY_POINT_GROUP = "migpolicy"


@dataclass(frozen=True)
class PluginInfo:
    """What ``migpolicy plugins`` shows about one registered plugin."""

    name: str
    version: str
    source: str
    hooks: tuple[str, ...]
    module: str
    error: str | None = None
    """Why an installed plugin is broken (not loaded), or ``None``."""


def get_plugin_manager(
    extra_modules: Iterable[str] = (), *, entry_points: bool = True, keep_broken: bool = False
) -> pluggy.PluginManager:
    """Return a plugin manager with built-ins, entry-point plugins and ``extra_modules``.

    Raises :class:`PluginError` for a module that does not import or a hook
    implementation that matches no hook specification; for an installed
    (entry-point) plugin the sentence says how to leave it out. With
    ``keep_broken`` such an entry-point plugin is skipped and recorded instead,
    for ``migpolicy plugins`` to show (:func:`plugin_infos`).
    """
    pm = pluggy.PluginManager("migpolicy")
    pm.add_hookspecs(hookspecs)
    pm._migpolicy_sources = {}  # plugin name -> (source, version, module)
    pm._migpolicy_broken = {}  # entry-point name -> (version, entry point, error sentence)
    from migpolicy import __version__

    for modname in BUILTIN_PLUGINS:
        module = importlib.import_module(modname)
        _register(pm, module, modname.rsplit(".", 1)[1], "builtin", __version__)
    if entry_points:
        _load_entry_points(pm, keep_broken)
    for modname in extra_modules:
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            raise PluginError(
                f"plugin module {modname!r} (-p) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, module, modname, "-p", getattr(module, "__version__", "unknown"))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_validation_sentence(pm, exc)) from None
    if os.environ.get("MIGPOLICY_TRACE_HOOKS") == "1":
        _enable_hook_tracing(pm)
    return pm


def _allow_list(installed: list[str]) -> set[str] | None:
    """The entry-point names ``MIGPOLICY_PLUGINS`` allows (set but empty: none), or ``None``."""
    allow = os.environ.get("MIGPOLICY_PLUGINS")
    if allow is None:
        return None
    allowed = {n.strip() for n in allow.split(",") if n.strip()}
    unknown = sorted(allowed - set(installed))
    if unknown:
        which = "which matches" if len(unknown) == 1 else "which match"
        print(f"migpolicy: warning: MIGPOLICY_PLUGINS names {', '.join(unknown)}, {which} no "
              f"installed plugin (installed: {', '.join(installed) or 'none'})", file=sys.stderr)
    return allowed


def _load_entry_points(pm: pluggy.PluginManager, keep_broken: bool) -> None:
    eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    names = sorted({ep.name for ep in eps})
    allowed = _allow_list(names)
    for ep in eps:
        if allowed is not None and ep.name not in allowed:
            continue
        version = ep.dist.version if ep.dist is not None else "unknown"
        try:
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} (entry point {ep.value}) failed to "
                                  f"import: {type(exc).__name__}: {exc}") from exc
            _register(pm, plugin, ep.name, "entry point", version)
            try:  # a misspelt hook: found now, while it is still this plugin's fault
                pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise PluginError(_validation_sentence(pm, exc)) from None
        except PluginError as exc:
            if pm.get_plugin(ep.name) is not None:  # half-registered: take it out again
                pm.unregister(name=ep.name)
                pm._migpolicy_sources.pop(ep.name, None)
            if keep_broken:
                pm._migpolicy_broken[ep.name] = (version, ep.value, str(exc))
                continue
            others = [n for n in names if n != ep.name and (allowed is None or n in allowed)]
            raise PluginError(f"{exc}; fix or uninstall it, or leave it out with "
                              f"MIGPOLICY_PLUGINS={','.join(others)}") from exc.__cause__


def _register(pm: pluggy.PluginManager, plugin: Any, name: str, source: str, version: str) -> None:
    if pm.is_registered(plugin) or pm.get_plugin(name) is not None:
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(_validation_sentence(pm, exc, name)) from None
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    pm._migpolicy_sources[name] = (source, version, module)


def _validation_sentence(
    pm: pluggy.PluginManager, exc: pluggy.PluginValidationError, name: str | None = None
) -> str:
    name = name or pm.get_name(exc.plugin) or repr(exc.plugin)
    lines = str(exc).splitlines()
    message = lines[0]
    if "unknown hook" in message:
        hook = message.split("'")[1]
        known = [h for h in vars(hookspecs) if h.startswith("migpolicy_")]
        import difflib

        close = difflib.get_close_matches(hook, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"plugin {name!r} implements {hook!r}, which is not a migpolicy hook{hint}"
    if len(lines) > 2 and lines[2].startswith("Argument(s)"):
        hook = message.split("'")[3]
        extra = lines[2].split("{", 1)[1].split("}", 1)[0]
        passed = ", ".join(getattr(pm.hook, hook).spec.argnames)
        return (f"plugin {name!r} implements {hook} with argument(s) {extra} that the hook "
                f"does not pass (it passes {passed or 'no arguments'})")
    return f"plugin {name!r} is invalid: {message}"


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Describe every registered plugin: name, version, source and hooks."""
    infos = []
    for name, (source, version, module) in pm._migpolicy_sources.items():
        plugin = pm.get_plugin(name)
        hooks = tuple(
            caller.name for caller in pm.get_hookcallers(plugin) or ()
        )
        infos.append(PluginInfo(name, version, source, hooks, module))
    for name, (version, value, error) in getattr(pm, "_migpolicy_broken", {}).items():
        infos.append(PluginInfo(name, version, "entry point", (), value, error=error))
    return infos


def call_hook(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Any:
    """Call ``hook`` with keyword arguments; a plugin that raises becomes a :class:`PluginError`.

    The error names the plugin (found from the traceback) and the hook, and
    keeps the plugin's own message.
    """
    try:
        return getattr(pm.hook, hook)(**kwargs)
    except PluginError:
        raise
    except Exception as exc:
        culprit = _culprit(pm, exc)
        raise PluginError(
            f"plugin {culprit!r} raised {type(exc).__name__} in hook {hook}: {exc}"
        ) from exc


def _culprit(pm: pluggy.PluginManager, exc: BaseException) -> str:
    modules = {module: name for name, (_, _, module) in pm._migpolicy_sources.items()}
    culprit = "unknown"
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        modname = frame.f_globals.get("__name__")
        if modname in modules:
            culprit = modules[modname]
    return culprit


def _enable_hook_tracing(pm: pluggy.PluginManager) -> None:
    starts: list[float] = []

    def before(hook_name: str, impls: list, kwargs: dict) -> None:
        starts.append(time.perf_counter())

    def after(outcome: Any, hook_name: str, impls: list, kwargs: dict) -> None:
        elapsed = time.perf_counter() - starts.pop()
        names = ",".join(impl.plugin_name for impl in impls)
        print(f"migpolicy: hook {hook_name} [{names}] {elapsed * 1e6:.1f} us", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)
