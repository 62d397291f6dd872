"""Reading tidy throughput tables (published or measured) and pricing their rows.

A table has one row per experiment: ``engine``, ``folio_kib``, ``workers``,
``throughput_gbps``, the amount moved as ``total_mib`` or ``folio_count``, and
optionally ``placement`` (spread/fill), ``side`` (push/pull), ``scope``:
``move`` (default; the throughput of the whole migration, as move_pages()
reports it) or ``copy`` (the copy stage alone, as a user-space copy measures
it), and ``kernel`` (the kernel the row was measured on).

A table's numbers hold for one kernel: :func:`table_kernel` says which, from
its ``kernel`` column or, for the published tables, from
:data:`PUBLISHED_KERNELS`. This module never prices a row itself: callers pass
a :data:`Predictor` (profile, rows → predicted GB/s), which ``migpolicy``'s
commands build from the stage pipeline (:mod:`migpolicy.hardware.predict`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from migpolicy.engines import CopyEngine
from migpolicy.errors import InputError
from migpolicy.files import open_text
from migpolicy.hardware.model import PLACEMENTS, SIDES

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile

__all__ = [
    "PUBLISHED_KERNELS",
    "ROW_DTYPE",
    "SCOPES",
    "SHIPPED_TABLES",
    "STAGE_DTYPE",
    "CopyShare",
    "Predictor",
    "read_stage_table",
    "read_table",
    "row_params",
    "shipped_table",
    "table_kernel",
]

#: Predicted throughput (GB/s) of every row of a table on a profile.
Predictor = Callable[["Profile", np.ndarray], np.ndarray]
#: Fraction of a sequential-copy migration of ``total_bytes`` spent copying, on a profile.
CopyShare = Callable[["Profile", int], float]

ROW_DTYPE = np.dtype(
    [
        ("engine", "U16"),
        ("folio_bytes", np.int64),
        ("workers", np.int64),
        ("folio_count", np.int64),
        ("placement", "U8"),
        ("side", "U8"),
        ("scope", "U8"),
        ("throughput_gbps", np.float64),
        ("row", np.int64),
    ]
)

#: The shipped published tables (file names under ``migpolicy/hardware/tables``):
#: RFC V2 tables 1a/1b, 2 and 3, and the RFC V3 throughput and batch-size tables.
SHIPPED_TABLES = {
    "1ab": "rfc_v2_move_pages_throughput.csv",
    "2": "rfc_v2_batch_size_2m.csv",
    "3": "rfc_v2_thread_placement_2m.csv",
    "v3": "rfc_v3_move_pages_throughput.csv",
    "v3-batch": "rfc_v3_batch_size_2m.csv",
}
#: The kernel each published table was measured on (by file name, wherever it lies).
PUBLISHED_KERNELS = {
    "rfc_v1_stage_cycles.csv": "6.8.0 + RFC V1",
    "rfc_v2_move_pages_throughput.csv": "6.14.0-rc7+ + RFC V2",
    "rfc_v2_batch_size_2m.csv": "6.14.0-rc7+ + RFC V2",
    "rfc_v2_thread_placement_2m.csv": "6.14.0-rc7+ + RFC V2",
    "rfc_v3_move_pages_throughput.csv": "6.16.0-rc6 + RFC V3",
    "rfc_v3_batch_size_2m.csv": "6.16.0-rc6 + RFC V3",
}
#: The shipped RFC V1 stage-share table.
STAGE_TABLE = "rfc_v1_stage_cycles.csv"

SCOPES = ("move", "copy")
_REQUIRED = ("engine", "folio_kib", "workers", "throughput_gbps")


def shipped_table(key: str) -> Path:
    """Path of a shipped published table: ``1ab``, ``2``, ``3`` (RFC V2), ``v3``,
    ``v3-batch`` (RFC V3) or ``v1`` (stages)."""
    name = STAGE_TABLE if key == "v1" else SHIPPED_TABLES[key]
    return Path(__file__).resolve().parent / "tables" / name


def _open_csv(path: Path) -> TextIO:
    return open_text(path, "CSV table")


def read_table(path: str | Path, engines: Iterable[str] | None = None) -> np.ndarray:
    """Read a tidy table; every malformed row is an :class:`InputError` naming file and row.

    ``engines``, when given, are the engine names a row may use.
    """
    path = Path(path)
    known = set(engines) if engines is not None else None
    with _open_csv(path) as handle:
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


#: The largest value each numeric column may hold: far beyond any machine, yet exact in int64.
_LARGEST = {"folio_kib": 1 << 30, "folio_count": 1 << 40, "total_mib": 1 << 30,
            "workers": 1 << 16, "throughput_gbps": 1e6}


def _parse_row(path: Path, number: int, record: Mapping[str, str], known) -> tuple:
    where = f"{path}:{number}"

    def num(column: str, kind: type = float) -> float:
        text = (record.get(column) or "").strip()
        try:
            value = kind(text)
        except ValueError:
            raise InputError(f"{where}: column {column}: expected a number, got {text!r}") from None
        if not 0 < value <= _LARGEST[column]:  # also refuses nan and infinity
            raise InputError(f"{where}: column {column}: expected a positive number up to "
                             f"{_LARGEST[column]:g}, got {text!r}")
        return value

    engine = (record.get("engine") or "").strip()
    if known is not None and engine not in known:
        raise InputError(f"{where}: unknown engine {engine!r} (known: {', '.join(sorted(known))})")
    folio_bytes = round(num("folio_kib") * 1024)
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
    scope = (record.get("scope") or "move").strip()
    if scope not in SCOPES:
        raise InputError(f"{where}: column scope: expected one of {', '.join(SCOPES)}, "
                         f"got {scope!r}")
    if side not in SIDES:
        raise InputError(f"{where}: column side: expected one of {', '.join(SIDES)}, got {side!r}")
    return (engine, folio_bytes, int(num("workers", int)), count, placement, side, scope,
            num("throughput_gbps"), number)


def row_params(row: np.void, base: Mapping[str, Any],
               engines: Mapping[str, CopyEngine]) -> dict[str, Any]:
    """The resolved parameters that price one table row (its workers on its engine's parameter)."""
    params = dict(base)
    engine = str(row["engine"])
    params.update({
        "engine": engine,
        "mt.placement": str(row["placement"]),
        "mt.side": str(row["side"]),
    })
    if engine in engines and engines[engine].workers_param:
        params[engines[engine].workers_param] = int(row["workers"])
    return params


STAGE_DTYPE = np.dtype(
    [("path", "U32"), ("total_bytes", np.int64), ("copy_fraction", np.float64), ("row", np.int64)]
)


def read_stage_table(path: str | Path) -> np.ndarray:
    """Read a stage-share table (RFC V1 form: ``path``, ``total_size``, ``copy_fraction``).

    Each row says what fraction of migrate_pages() time the copy took when
    moving ``total_size`` of 4 KiB pages along ``path`` (``cpu_generic`` is the
    kernel's sequential copy).
    """
    from migpolicy.units import parse_size

    path = Path(path)
    with _open_csv(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("path", "total_size", "copy_fraction")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column {', '.join(missing)}")
        rows = []
        for number, record in enumerate(reader, start=2):
            where = f"{path}:{number}"
            try:
                total = parse_size(record["total_size"], "total_size")
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
            try:
                fraction = float(record["copy_fraction"])
            except ValueError:
                raise InputError(f"{where}: column copy_fraction: expected a number, got "
                                 f"{record['copy_fraction']!r}") from None
            if not 0 < fraction < 1:
                raise InputError(f"{where}: column copy_fraction: expected a fraction in (0, 1), "
                                 f"got {fraction}")
            rows.append((record["path"].strip(), total, fraction, number))
    if not rows:
        raise InputError(f"{path}: no data rows")
    return np.array(rows, dtype=STAGE_DTYPE)


def table_kernel(path: str | Path) -> str | None:
    """The kernel a table's rows hold for: its ``kernel`` column, else the published record.

    ``None`` when the table does not say. A ``kernel`` column with two
    different values is an :class:`InputError` (split such a table).
    """
    path = Path(path)
    with _open_csv(path) as handle:
        reader = csv.DictReader(handle)
        if "kernel" in (reader.fieldnames or []):
            kernels = {(r.get("kernel") or "").strip() for r in reader} - {""}
            if len(kernels) > 1:
                raise InputError(f"{path}: column kernel holds {len(kernels)} kernels "
                                 f"({', '.join(sorted(kernels))}); one table, one kernel")
            if kernels:
                return kernels.pop()
    return PUBLISHED_KERNELS.get(path.name)
