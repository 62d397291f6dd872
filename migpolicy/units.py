"""Parsing and printing byte sizes such as ``4K``, ``2MiB`` or ``1G``.

Sizes are binary (``K`` = 1024), as the kernel and the published move_pages()
tables use them.
"""

from __future__ import annotations

import re

from migpolicy.errors import InputError

__all__ = ["format_size", "parse_size"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int, what: str = "size") -> int:
    """Return the number of bytes in ``text`` (``4K``, ``4KiB``, ``2M``, ``1G``, ``4096``).

    Raises :class:`InputError` naming ``what`` when the text is not a positive size.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE_RE.match(str(text))
        if not match:
            raise InputError(
                f"{what}: expected a size such as 4K, 2MiB or 1G, got {text!r}"
            )
        number, unit = match.groups()
        value = float(number) * _UNITS[unit.upper()]
        if value != int(value):
            raise InputError(f"{what}: {text!r} is not a whole number of bytes")
        value = int(value)
    if value <= 0:
        raise InputError(f"{what}: expected a positive size, got {text!r}")
    return value


def format_size(nbytes: int) -> str:
    """Return ``nbytes`` in the largest binary unit that divides it (``2MiB``, ``4KiB``)."""
    for unit in ("T", "G", "M", "K"):
        scale = _UNITS[unit]
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}iB"
    return f"{nbytes}B"
