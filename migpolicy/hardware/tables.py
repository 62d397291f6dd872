"""Reading tidy throughput tables (published or measured) and pricing their rows.

A table has one row per experiment: ``engine``, ``folio_kib``, ``workers``,
``throughput_gbps``, the amount moved as ``total_mib`` or ``folio_count``, and
optionally ``placement`` (spread/fill) and ``side`` (push/pull). Rows are
priced with exactly the machinery of ``migpolicy move``
(:func:`migpolicy.pipeline.price_uniform`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy.errors import InputError
from migpolicy.hardware.model import PLACEMENTS, SIDES

__all__ = ["ROW_DTYPE", "SHIPPED_TABLES", "predict_rows", "read_table", "shipped_table"]

ROW_DTYPE = np.dtype(
    [
        ("engine", "U16"),
        ("folio_bytes", np.int64),
        ("workers", np.int64),
        ("folio_count", np.int64),
        ("placement", "U8"),
        ("side", "U8"),
        ("throughput_gbps", np.float64),
        ("row", np.int64),
    ]
)

#: The shipped published tables (file names under ``migpolicy/hardware/tables``).
SHIPPED_TABLES = {
    "1ab": "rfc_v2_move_pages_throughput.csv",
    "2": "rfc_v2_batch_size_2m.csv",
    "3": "rfc_v2_thread_placement_2m.csv",
}

_REQUIRED = ("engine", "folio_kib", "workers", "throughput_gbps")


def shipped_table(key: str) -> Path:
    """Path of a shipped published table: ``1ab``, ``2`` or ``3`` (RFC V2 table numbers)."""
    return Path(__file__).resolve().parent / "tables" / SHIPPED_TABLES[key]


def read_table(path: str | Path, engines: Iterable[str] | None = None) -> np.ndarray:
    """Read a tidy table; every malformed row is an :class:`InputError` naming file and row.

    ``engines``, when given, are the engine names a row may use.
    """
    path = Path(path)
    known = set(engines) if engines is not None else None
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in _REQUIRED if c not in columns]
        if not ("total_mib" in columns or "folio_count" in columns):
            missing.append("total_mib or folio_count")
        if missing:
            raise InputError(f"{path}: missing column {', '.join(missing)} (columns: "
                             f"{', '.join(columns) or 'none'})")
        rows = []
        for number, record in enumerate(reader, start=2):
            rows.append(_parse_row(path, number, record, known))
    if not rows:
        raise InputError(f"{path}: no data rows")
    return np.array(rows, dtype=ROW_DTYPE)


def _parse_row(path: Path, number: int, record: Mapping[str, str], known) -> tuple:
    where = f"{path}:{number}"

    def num(column: str, kind: type = float) -> float:
        text = (record.get(column) or "").strip()
        try:
            value = kind(text)
        except ValueError:
            raise InputError(f"{where}: column {column}: expected a number, got {text!r}") from None
        if value <= 0:
            raise InputError(f"{where}: column {column}: expected a positive number, got {text!r}")
        return value

    engine = (record.get("engine") or "").strip()
    if known is not None and engine not in known:
        raise InputError(f"{where}: unknown engine {engine!r} (known: {', '.join(sorted(known))})")
    folio_bytes = int(round(num("folio_kib") * 1024))
    if record.get("folio_count"):
        count = int(num("folio_count", int))
    else:
        total = num("total_mib") * (1 << 20)
        count = int(total // folio_bytes)
        if count < 1:
            raise InputError(f"{where}: total_mib is smaller than one folio")
    placement = (record.get("placement") or "spread").strip()
    side = (record.get("side") or "push").strip()
    if placement not in PLACEMENTS:
        raise InputError(f"{where}: column placement: expected one of {', '.join(PLACEMENTS)}, "
                         f"got {placement!r}")
    if side not in SIDES:
        raise InputError(f"{where}: column side: expected one of {', '.join(SIDES)}, got {side!r}")
    return (engine, folio_bytes, int(num("workers", int)), count, placement, side,
            num("throughput_gbps"), number)


def row_params(row: np.void, base: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved parameters that price one table row."""
    params = dict(base)
    params.update({
        "engine": str(row["engine"]),
        "workers": int(row["workers"]),
        "mt.placement": str(row["placement"]),
        "mt.side": str(row["side"]),
    })
    return params


def predict_rows(pm: Any, hw: Any, rows: np.ndarray, base_params: Mapping[str, Any]) -> np.ndarray:
    """Predicted throughput (GB/s) of every row, priced like ``migpolicy move``."""
    from migpolicy.pipeline import price_uniform

    src, dst = (0, 1) if 1 in hw.nodes else (0, 0)
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        report = price_uniform(pm, int(row["folio_bytes"]), int(row["folio_count"]), hw,
                               row_params(row, base_params), src=src, dst=dst)
        out[i] = report.throughput_gbps
    return out
