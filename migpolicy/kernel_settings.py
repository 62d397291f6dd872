"""A tuned policy as the settings of real Linux mechanisms: what ``migpolicy policy kernel`` prints.

Each plugin maps its own parameters through the ``migpolicy_kernel_settings``
hook: a :class:`KernelSetting` per sysctl, debugfs or sysfs knob, DAMOS field
(a path into the kdamonds JSON that ``damo start --kdamonds`` reads), copy-offload
setting of the RFC series or compile-time constant, each naming the parameters it
comes from; a :class:`NoKernelEquivalent` says why some parameters have none.
This module gathers the answers and lists every parameter of the policy file
that no setting covers, with a reason, so nothing of the file is dropped
silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from migpolicy.errors import PluginError
from migpolicy.registries import collect

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile
    from migpolicy.params import Parameter

__all__ = [
    "MECHANISMS",
    "KernelSetting",
    "KernelSettings",
    "NoKernelEquivalent",
    "damo_document",
    "kernel_settings",
]

#: What a setting is, in the order the text output groups them.
MECHANISMS = {
    "sysctl": "sysctl (/proc/sys)",
    "debugfs": "debugfs (/sys/kernel/debug)",
    "sysfs": "sysfs (/sys)",
    "damo": "DAMOS scheme (kdamonds JSON for damo start --kdamonds)",
    "offload": "copy offload (RFC series, not in mainline)",
    "build": "compile-time constants (need a rebuilt kernel)",
}


@dataclass(frozen=True)
class KernelSetting:
    """One setting of a real kernel mechanism and the policy parameters it comes from.

    ``mechanism`` is a key of :data:`MECHANISMS`; ``name`` is what to set: a
    sysctl name (``kernel.numa_balancing``), an absolute file path under
    ``/sys``, a ``/``-separated path into the kdamonds JSON
    (``kdamonds/0/contexts/0/intervals/sample_us``), or the description of an
    RFC setting or a constant. ``note`` says how a value was converted, and
    from what.
    """

    mechanism: str
    name: str
    value: Any
    from_params: tuple[str, ...]
    note: str = ""

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"kernel setting {self.name!r}: unknown mechanism "
                             f"{self.mechanism!r} (known: {', '.join(MECHANISMS)})")
        if not self.from_params:
            raise ValueError(f"kernel setting {self.name!r}: name the parameters it comes from")


@dataclass(frozen=True)
class NoKernelEquivalent:
    """Policy parameters with no kernel setting, and why (a model-only cost, no such knob ...)."""

    params: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class KernelSettings:
    """Every setting a policy maps to, and each policy parameter that maps to none."""

    settings: list[KernelSetting]
    #: parameter → why it has no kernel equivalent, for every parameter of the
    #: policy file no setting covers (and those a plugin says are only partly covered).
    unmapped: dict[str, str] = field(default_factory=dict)

    def by_mechanism(self) -> dict[str, list[KernelSetting]]:
        """The settings grouped by mechanism, in :data:`MECHANISMS` order."""
        out: dict[str, list[KernelSetting]] = {}
        for mechanism in MECHANISMS:
            rows = [s for s in self.settings if s.mechanism == mechanism]
            if rows:
                out[mechanism] = rows
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, the damo document (or ``None``) and the unmapped parameters."""
        damo = [s for s in self.settings if s.mechanism == "damo"]
        return {
            "settings": [{"mechanism": s.mechanism, "name": s.name, "value": s.value,
                          "from_params": list(s.from_params), "note": s.note}
                         for s in self.settings],
            "damo": damo_document(damo) if damo else None,
            "no_kernel_equivalent": dict(self.unmapped),
        }


def kernel_settings(pm: pluggy.PluginManager, params: Mapping[str, Any], hw: Profile,
                    given: Sequence[str], declared: Sequence[Parameter]) -> KernelSettings:
    """Ask every plugin for the settings of ``params`` on ``hw``; list what maps to none.

    ``params`` are the resolved values (defaults filled in); ``given`` the keys
    the policy file set: each one is either covered by a setting or listed in
    :attr:`KernelSettings.unmapped` with a reason. Raises :class:`PluginError`
    for a plugin that raises or answers with something else than settings, and
    for two plugins that set one knob.
    """
    answers = collect(pm, "migpolicy_kernel_settings", (KernelSetting, NoKernelEquivalent),
                      "kernel setting", _key, params=dict(params), hw=hw)
    settings = [a for a in answers.values() if isinstance(a, KernelSetting)]
    reasons: dict[str, str] = {}
    for answer in answers.values():
        if isinstance(answer, NoKernelEquivalent):
            for name in answer.params:
                reasons.setdefault(name, answer.reason)
    covered = {name for s in settings for name in s.from_params}
    table = {p.name: p for p in declared}
    unmapped: dict[str, str] = {}
    for key in given:
        if key in reasons:
            unmapped[key] = reasons[key]
        elif key not in covered:
            unmapped[key] = _why_not(table.get(key), params)
    return KernelSettings(settings=settings, unmapped=unmapped)


def _key(answer: KernelSetting | NoKernelEquivalent) -> str:
    if isinstance(answer, KernelSetting):
        return f"{answer.mechanism} {answer.name}"
    return f"no equivalent {id(answer)}"  # several plugins may say so of one parameter


def _why_not(parameter: Parameter | None, params: Mapping[str, Any]) -> str:
    """The reason for a parameter no plugin mapped: not in effect, or no plugin knows one."""
    if parameter is not None and not parameter.active(params):
        conditions = "; ".join(
            f"{key} is {' or '.join(map(str, allowed))} (this policy: {params.get(key)})"
            for key, allowed in parameter.when.items())
        return f"not in effect in this policy: it applies only when {conditions}"
    return "no plugin maps it to a kernel setting"


def damo_document(settings: Sequence[KernelSetting]) -> dict[str, Any]:
    """The kdamonds JSON ``damo start --kdamonds FILE`` reads, built from the ``damo`` settings.

    Each setting's name is a ``/``-separated path into the document; a
    number in the path indexes a list (``kdamonds/0/contexts/0/...``).
    Raises :class:`PluginError` when two settings disagree on the shape.
    """
    root: dict[str, Any] = {}
    for setting in settings:
        keys = setting.name.split("/")
        node: Any = root
        for here, below in itertools.pairwise(keys):
            node = _child(node, here, [] if below.isdigit() else {}, setting)
        _put(node, keys[-1], setting.value, setting)
    return root


def _child(node: Any, key: str, empty: Any, setting: KernelSetting) -> Any:
    if isinstance(node, list):
        index = _slot(node, key)
        if node[index] is None:
            node[index] = empty
        child = node[index]
    else:
        child = node.setdefault(key, empty)
    if type(child) is not type(empty):
        raise PluginError(f"damo setting {setting.name}: {key} is already a "
                          f"{type(child).__name__}")
    return child


def _put(node: Any, key: str, value: Any, setting: KernelSetting) -> None:
    if isinstance(node, list):
        node[_slot(node, key)] = value
    elif key in node:
        raise PluginError(f"damo setting {setting.name} is set twice")
    else:
        node[key] = value


def _slot(node: list, key: str) -> int:
    """The index ``key`` names in ``node``, which grows to hold it."""
    index = int(key)
    node.extend([None] * (index + 1 - len(node)))
    return index
