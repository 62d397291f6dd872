"""Policy parameters: declared by plugins, validated, and searchable by Optuna.

Each plugin declares the parameters it reads (a tuple of :class:`Parameter`)
through the ``migpolicy_parameters`` hook. Values come from defaults, policy
files and ``--param KEY=VALUE``; unknown keys and out-of-range values are
errors, never silently ignored. The same declarations are the autotuner's
search space (:mod:`migpolicy.tuning.space`): ranges, log scale, choices,
bounds that depend on the hardware profile and conditions, so a tunable
parameter is written down once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migpolicy.errors import InputError

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile

__all__ = ["Parameter", "resolve", "worker_parameter"]

#: Registries whose names a ``choice`` parameter may take its choices from.
REGISTRIES = ("engine", "placement", "demotion")


@dataclass(frozen=True)
class Parameter:
    """One named policy parameter, e.g. ``mt.placement``.

    ``kind`` is ``int``, ``float``, ``bool``, ``choice`` or ``str``.
    ``low``/``high`` bound numbers (inclusive); ``choices`` lists the values of
    a choice. ``tunable`` marks parameters the autotuner searches; ``log``
    asks for a log-scale search. For the search space only:

    * ``hw_bounds(hw)`` narrows ``low``/``high`` to what a profile allows
      (threads, channels);
    * ``applies(hw)`` says whether the parameter can matter on a profile
      (spreading threads across LLC domains needs more than one); where it
      cannot, the tuner leaves it at its default;
    * ``when`` makes the parameter count only under conditions, e.g.
      ``{"engine": ("mt",)}``: searched only in trials that choose ``mt``;
    * ``registry`` (``engine``, ``placement`` or ``demotion``) takes the
      choices from what the plugins register, e.g. every copy engine.
    """

    name: str
    default: Any
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    tunable: bool = True
    log: bool = False
    hw_bounds: Callable[[Profile], tuple[float, float]] | None = field(default=None,
                                                                       compare=False)
    when: Mapping[str, tuple] = field(default_factory=dict)
    registry: str = ""
    applies: Callable[[Profile], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float", "bool", "choice", "str"):
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        if self.registry and self.registry not in REGISTRIES:
            raise ValueError(f"parameter {self.name}: unknown registry {self.registry!r}")
        if self.tunable and self.kind == "str":
            raise ValueError(f"parameter {self.name}: a str parameter cannot be tunable; "
                             "make it a choice")

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether the parameter counts given the other values (its ``when`` conditions)."""
        return all(values.get(key) in allowed for key, allowed in self.when.items())

    def coerce(self, value: Any, where: str = "") -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`InputError`."""
        prefix = f"{where}: " if where else ""
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                out: Any = int(value)
            elif self.kind == "float":
                out = float(value)
                if not math.isfinite(out):  # nan and infinity satisfy no range
                    raise ValueError(value)
            elif self.kind == "bool":
                out = _to_bool(value)
            else:
                out = str(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(
                f"{prefix}parameter {self.name} expects {self._expected()}, got {value!r}"
            ) from None
        if self.kind == "choice" and self.choices and out not in self.choices:
            raise InputError(
                f"{prefix}parameter {self.name} expects {self._expected()}, got {value!r}"
            )
        if self.kind in ("int", "float") and not (
            (self.low is None or out >= self.low) and (self.high is None or out <= self.high)
        ):
            raise InputError(
                f"{prefix}parameter {self.name} expects {self._expected()}, got {value!r}"
            )
        return out

    def _expected(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.low is not None and self.high is not None:
            bounds = f" in [{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            bounds = f" >= {self.low:g}"
        elif self.high is not None:
            bounds = f" <= {self.high:g}"
        else:
            bounds = ""
        return f"{'an integer' if self.kind == 'int' else 'a number'}{bounds}"


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def resolve(
    declared: Iterable[Parameter], given: Mapping[str, Any], where: str = ""
) -> dict[str, Any]:
    """Return every declared parameter's value: ``given`` over the defaults.

    Raises :class:`InputError` for a key no plugin declares (naming the close
    matches) or a value of the wrong type or range.
    """
    table = {p.name: p for p in declared}
    values = {name: p.default for name, p in table.items()}
    for key, value in given.items():
        if key not in table:
            import difflib

            close = difflib.get_close_matches(key, table, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            prefix = f"{where}: " if where else ""
            raise InputError(f"{prefix}unknown parameter {key!r}{hint}")
        values[key] = table[key].coerce(value, where)
    return values


def worker_parameter(name: str, engine: str, default: int, unit: str,
                     max_workers: Callable[[Profile], int]) -> Parameter:
    """The worker-count parameter of a copy engine (what its ``workers_param`` names).

    ``--workers`` sets it for the fixed engine and ``auto`` tries counts up to
    it; it is searched only when ``engine`` (or ``auto``) is chosen, between 1
    and what the profile has (``max_workers(hw)``).
    """
    return Parameter(name, default, "int", f"{unit}s of the {engine} engine (auto: the most it "
                     "may use)", low=1, high=1024,
                     hw_bounds=lambda hw: (1, max(1, max_workers(hw))),
                     when={"engine": (engine, "auto")})
