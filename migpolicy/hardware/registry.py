"""Finding hardware profiles by name (registered by plugins) or by path."""

from __future__ import annotations

from pathlib import Path

import pluggy

from migpolicy.errors import ConfigError, InputError
from migpolicy.hardware.profile import Profile, load_profile
from migpolicy.plugin_manager import call_hook

__all__ = ["DEFAULT_PROFILE", "find_profile", "list_profiles"]

#: The profile priced when none is named: the platform of the published tables.
DEFAULT_PROFILE = "zen3-epyc-ptdma"


def list_profiles(pm: pluggy.PluginManager) -> dict[str, Profile]:
    """Every registered profile by name; a later registration (the user's) wins."""
    out: dict[str, Profile] = {}
    # pluggy answers last-registered first; apply the oldest first so later ones win.
    for paths in reversed(call_hook(pm, "migpolicy_hardware_profiles")):
        for path in paths:
            profile = load_profile(path)
            out[profile.name] = profile
    return out


def find_profile(pm: pluggy.PluginManager, name_or_path: str | None) -> Profile:
    """The profile named ``name_or_path``, or the YAML file at that path."""
    name = name_or_path or DEFAULT_PROFILE
    if name.endswith((".yaml", ".yml")) or "/" in name:
        if not Path(name).exists():
            raise InputError(f"--hw {name}: no such profile file")
        return load_profile(name)
    for paths in call_hook(pm, "migpolicy_hardware_profiles"):
        for path in reversed(paths):
            if Path(path).stem == name:
                profile = load_profile(path)
                if profile.name == name:
                    return profile
    profiles = list_profiles(pm)
    if name in profiles:
        return profiles[name]
    known = ", ".join(sorted(profiles))
    raise ConfigError(f"--hw {name}: unknown hardware profile (known: {known})")
