"""Policy files and policy specs: what ``--policy``, ``--param`` and ``--compare`` choose.

A policy is a set of parameter values, the names ``--param`` takes
(``placement``, ``placement.demotion``, ``engine``, ``numab.rate_limit_mbps``
...). A policy file is a flat YAML mapping of them; an unknown key is an error
naming the key, the file and the line. A ``--compare`` item is a policy
file, a promotion policy name (``hist``) or a promotion and a demotion policy
(``numab+watermark``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from migpolicy.errors import ConfigError
from migpolicy.files import input_file
from migpolicy.hardware.yamlfile import read_yaml
from migpolicy.params import Parameter

__all__ = ["DEFAULT_POLICY", "load_policy", "policy_spec"]

#: The kernel's own memory tiering: NUMA-balancing promotion with kswapd demotion.
DEFAULT_POLICY = {"placement": "numab", "placement.demotion": "watermark"}


def load_policy(path: str | Path, declared: Iterable[Parameter]) -> dict[str, Any]:
    """The parameter values of the policy file at ``path`` (keys checked, values as written)."""
    path = input_file(path, "policy")
    data, lines = read_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a flat mapping of parameter: value, got a "
                          f"{type(data).__name__}")
    known = {p.name for p in declared}
    out: dict[str, Any] = {}
    for key, value in data.items():
        line = lines.get((key,), 0)
        where = f"{path}:{line}" if line else str(path)
        if not isinstance(key, str) or key not in known:
            close = difflib.get_close_matches(str(key), known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{where}: unknown parameter {key!r}{hint}")
        if isinstance(value, (Mapping, list)) or value is None:
            raise ConfigError(f"{where}: parameter {key} expects a single value, got "
                              f"{value!r}")
        out[key] = value
    return out


def policy_spec(item: str, declared: Iterable[Parameter]) -> dict[str, Any]:
    """The parameters a ``--compare`` item sets: a policy file, ``P`` or ``P+D``."""
    item = item.strip()
    if item.endswith((".yaml", ".yml")):
        return load_policy(item, declared)
    promotion, _, demotion = item.partition("+")
    if not demotion:
        demotion = "none" if promotion == "none" else DEFAULT_POLICY["placement.demotion"]
    return {"placement": promotion, "placement.demotion": demotion}
