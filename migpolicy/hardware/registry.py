"""Finding hardware profiles by name (registered by plugins) or by path.

Plugins answer ``migpolicy_hardware_profiles`` with profile file paths; each
answer is checked here, at the boundary, so a plugin returning something else
is a :class:`PluginError` naming the plugin and the hook. A later registration
wins a name (the user's profile directory over the shipped profiles), in
``hw list`` and in every lookup by name alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pluggy

from migpolicy.errors import ConfigError, InputError, MigpolicyError, PluginError
from migpolicy.hardware.profile import Profile, load_profile

__all__ = [
    "DEFAULT_PROFILE",
    "find_profile",
    "is_profile_path",
    "list_profiles",
    "profile_paths",
]

#: The profile priced when none is named: the platform of the published tables.
DEFAULT_PROFILE = "zen3-epyc-ptdma"

_HOOK = "migpolicy_hardware_profiles"


def profile_paths(pm: pluggy.PluginManager) -> list[Path]:
    """Every registered profile file, the oldest registration first.

    Each implementation is called on its own (through pluggy, so hook tracing
    sees it) so that a bad answer (not a list of paths) or an exception names
    the plugin that gave it.
    """
    out: list[Path] = []
    impls = getattr(pm.hook, _HOOK).get_hookimpls()
    for impl in impls:
        alone = pm.subset_hook_caller(_HOOK, [i.plugin for i in impls if i is not impl])
        try:
            answers = alone()
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} raised {type(exc).__name__} in "
                              f"hook {_HOOK}: {exc}") from exc
        if not answers:  # the plugin answered None: nothing to register
            continue
        (answer,) = answers
        if isinstance(answer, str | bytes | os.PathLike) or not isinstance(answer, list | tuple):
            raise PluginError(f"plugin {impl.plugin_name!r} returned {_short(answer)} from hook "
                              f"{_HOOK}; expected a list of profile file paths")
        for item in answer:
            if not isinstance(item, str | os.PathLike) or not str(item):
                raise PluginError(f"plugin {impl.plugin_name!r} returned {_short(item)} among "
                                  f"the paths of hook {_HOOK}; expected profile file paths")
            out.append(Path(item))
    return out


def _short(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def list_profiles(
    pm: pluggy.PluginManager, on_error: Callable[[MigpolicyError], None] | None = None
) -> dict[str, Profile]:
    """Every registered profile by name; a later registration (the user's) wins.

    A file that does not load raises, or, with ``on_error``, is reported to it
    and skipped (``hw list`` names it and goes on).
    """
    out: dict[str, Profile] = {}
    for path in profile_paths(pm):
        try:
            profile = load_profile(path)
        except MigpolicyError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        out.pop(profile.name, None)  # re-insert: the order shows which one won
        out[profile.name] = profile
    return out


def is_profile_path(name_or_path: str) -> bool:
    """Whether ``--hw`` and the like were given a file (``*.yaml``, ``a/b``) rather than a name."""
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path


def find_profile(
    pm: pluggy.PluginManager, name_or_path: str | None, option: str = "--hw"
) -> Profile:
    """The profile named ``name_or_path``, or the YAML file at that path.

    ``option`` is what the user typed to give it (``--hw``, ``--base``,
    ``PROFILE``); errors name it. A name is resolved as ``hw list`` shows it:
    the latest registered file whose ``name`` it is. Files that do not load
    are skipped, unless the file is named after the profile asked for.
    """
    if name_or_path is not None and not name_or_path.strip():
        raise InputError(f"{option}: expected a profile name or YAML file, got an empty string")
    name = name_or_path or DEFAULT_PROFILE
    if is_profile_path(name):
        if not Path(name).exists():
            raise InputError(f"{option} {name}: no such profile file")
        return load_profile(name)
    skipped: list[MigpolicyError] = []
    for path in reversed(profile_paths(pm)):
        try:
            profile = load_profile(path)
        except MigpolicyError as exc:
            if path.stem == name:
                raise
            skipped.append(exc)
            continue
        if profile.name == name:
            return profile
    known = ", ".join(sorted(list_profiles(pm, on_error=lambda exc: None)))
    broken = f"; {len(skipped)} profile file(s) did not load, see `migpolicy hw list`" \
        if skipped else ""
    raise ConfigError(f"{option} {name}: unknown hardware profile (known: {known}){broken}")
