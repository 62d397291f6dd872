"""Parsing and printing byte sizes such as ``4K``, ``2MiB`` or ``1G``.

Sizes are binary (``K`` = 1024), as the kernel and the published move_pages()
tables use them.
"""

from __future__ import annotations

import re

from migpolicy.errors import InputError

__all__ = ["MAX_SIZE", "format_size", "parse_size"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# ASCII digits only (``\\d`` would take other scripts' digits too), and not so many
# that converting them costs anything: 24 digits already pass MAX_SIZE.
_SIZE_RE = re.compile(r"^\s*([0-9]{1,24})(?:\.([0-9]{1,24}))?\s*([KMGT]?)(?:I?B)?\s*$",
                      re.IGNORECASE | re.ASCII)

#: Largest size accepted: 1 PiB, far beyond any folio, buffer or trace, and far
#: below the int64 that array fields (folio counts, byte totals) hold.
MAX_SIZE = 1 << 50


def parse_size(text: str | int, what: str = "size") -> int:
    """Return the number of bytes in ``text`` (``4K``, ``4KiB``, ``2M``, ``1.5K``, ``4096``).

    Exact integer arithmetic: a decimal fraction is taken as written
    (``1.5K`` is 1536 bytes) and must come to whole bytes. Raises
    :class:`InputError` naming ``what`` when the text is not a positive size
    of at most :data:`MAX_SIZE` bytes.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE_RE.match(str(text))
        if not match:
            raise InputError(
                f"{what}: expected a size such as 4K, 2MiB or 1G, got {text!r}"
            )
        whole, fraction, unit = match.groups()
        fraction = fraction or ""
        scaled = int(whole + fraction) * _UNITS[unit.upper()]
        value, rest = divmod(scaled, 10 ** len(fraction))
        if rest:
            raise InputError(f"{what}: {text!r} is not a whole number of bytes")
    if value <= 0:
        raise InputError(f"{what}: expected a positive size, got {text!r}")
    if value > MAX_SIZE:
        raise InputError(f"{what}: {text!r} is larger than the largest size accepted, "
                         f"{format_size(MAX_SIZE)}")
    return value


def format_size(nbytes: int) -> str:
    """Return ``nbytes`` in the largest binary unit that divides it (``2MiB``, ``4KiB``)."""
    for unit in ("T", "G", "M", "K"):
        scale = _UNITS[unit]
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}iB"
    return f"{nbytes}B"
