"""The autotuner's search space: the union of what every enabled plugin declares.

Each plugin answers ``migpolicy_search_space(trial, hw)`` with the values it
suggested for its own parameters; two plugins suggesting the same name is a
plugin error, so a study never tunes one knob twice.
"""

from __future__ import annotations

from typing import Any

import pluggy

from migpolicy.errors import PluginError
from migpolicy.plugin_manager import call_hook

__all__ = ["suggest_policy"]


def suggest_policy(trial: Any, pm: pluggy.PluginManager, hw: Any) -> dict[str, Any]:
    """Ask ``trial`` for one policy: parameter name → value, over all plugins."""
    policy: dict[str, Any] = {}
    for answer in call_hook(pm, "migpolicy_search_space", trial=trial, hw=hw):
        for name, value in (answer or {}).items():
            if name in policy:
                raise PluginError(f"two plugins suggest the search-space parameter {name!r}")
            policy[name] = value
    return policy
