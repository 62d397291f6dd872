"""Policy parameters: declared by plugins, validated, and searchable by Optuna.

Each plugin declares the parameters it reads (a tuple of :class:`Parameter`)
through the ``migpolicy_parameters`` hook. Values come from defaults, policy
files and ``--param KEY=VALUE``; unknown keys and out-of-range values are
errors, never silently ignored. The same declarations drive the Optuna search
space (:func:`suggest`), so a tunable parameter is written down once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migpolicy.errors import InputError

__all__ = ["Parameter", "resolve", "suggest"]


@dataclass(frozen=True)
class Parameter:
    """One named policy parameter, e.g. ``mt.threads``.

    ``kind`` is ``int``, ``float``, ``bool`` or ``choice``. ``low``/``high``
    bound numbers (inclusive); ``choices`` lists the values of a choice.
    ``tunable`` marks parameters the autotuner searches; ``log`` asks for a
    log-scale search.
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
            elif self.kind == "bool":
                out = _to_bool(value)
            else:
                out = str(value)
        except (TypeError, ValueError):
            raise InputError(
                f"{prefix}parameter {self.name} expects {self._expected()}, got {value!r}"
            ) from None
        if self.kind == "choice" and out not in self.choices:
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


def suggest(trial: Any, declared: Iterable[Parameter], bounds: Mapping[str, tuple] = {}) -> dict:
    """Ask an Optuna ``trial`` for a value of every tunable parameter in ``declared``.

    ``bounds`` narrows a numeric range to what the hardware allows
    (e.g. ``{"mt.threads": (1, 64)}``).
    """
    out = {}
    for p in declared:
        if not p.tunable:
            continue
        low, high = bounds.get(p.name, (p.low, p.high))
        if p.kind == "int":
            out[p.name] = trial.suggest_int(p.name, int(low), int(high), log=p.log)
        elif p.kind == "float":
            out[p.name] = trial.suggest_float(p.name, float(low), float(high), log=p.log)
        elif p.kind == "bool":
            out[p.name] = trial.suggest_categorical(p.name, [False, True])
        else:
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
    return out
