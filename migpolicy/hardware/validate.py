"""Validation: a profile's predictions against a measured or published table, point by point.

Every row of a tidy table is priced with ``migpolicy move``'s machinery
(:func:`migpolicy.hardware.predict.pipeline_predictor`) and compared with what was
observed: the absolute percentage error of each point, and their median and
maximum. Where a learned cost model is available its predictions are
compared on the same rows, side by side. :func:`plot` draws it the way the
published figures do: throughput against folio size per worker count,
observed as points, predicted as lines (the learned model's dashed).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy.errors import InputError
from migpolicy.files import atomic_output, check_output, open_text
from migpolicy.hardware.profile import Profile
from migpolicy.hardware.tables import Predictor, read_table

__all__ = ["Validation", "plot", "table_records", "validate"]


@dataclass
class Validation:
    """Observed and predicted throughput of every row of one table on one profile."""

    profile: str
    table: Path
    rows: np.ndarray
    records: list[dict[str, Any]]
    predicted: np.ndarray
    learned: np.ndarray | None = None

    @property
    def observed(self) -> np.ndarray:
        """Observed throughput of each row, GB/s."""
        return self.rows["throughput_gbps"].astype(float)

    @property
    def abs_pct_err(self) -> np.ndarray:
        """The analytic model's absolute percentage error of each row."""
        from migpolicy.hardware.fit import abs_pct_err  # fit imports scipy: only when needed

        return abs_pct_err(self.predicted, self.observed)

    @property
    def learned_abs_pct_err(self) -> np.ndarray | None:
        """The learned model's absolute percentage error of each row, if there is one."""
        from migpolicy.hardware.fit import abs_pct_err

        return None if self.learned is None else abs_pct_err(self.learned, self.observed)

    def as_json(self) -> dict[str, Any]:
        """The object ``migpolicy hw validate --json`` prints."""
        err = self.abs_pct_err
        out: dict[str, Any] = {
            "profile": self.profile,
            "table": str(self.table),
            "median_abs_pct_err": float(np.median(err)),
            "max_abs_pct_err": float(err.max()),
            "rows": [],
        }
        learned_err = self.learned_abs_pct_err
        for i, record in enumerate(self.records):
            row = {**record, "predicted_gbps": float(self.predicted[i]),
                   "abs_pct_err": float(err[i])}
            if self.learned is not None and learned_err is not None:
                row["learned_gbps"] = float(self.learned[i])
                row["learned_abs_pct_err"] = float(learned_err[i])
            out["rows"].append(row)
        if learned_err is not None:
            out["learned"] = {
                "median_abs_pct_err": float(np.median(learned_err)),
                "max_abs_pct_err": float(learned_err.max()),
            }
        return out


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def table_records(path: str | Path) -> dict[int, dict[str, Any]]:
    """The table's own columns of every row (numbers parsed), by line number."""
    with open_text(path, "CSV table") as handle:
        return {number: {k: _number(v.strip()) for k, v in record.items() if k is not None}
                for number, record in enumerate(csv.DictReader(handle), start=2)}


def validate(
    pm: Any,
    hw: Profile,
    table: str | Path,
    base_params: Mapping[str, Any],
    *,
    engines: Sequence[str] | None = None,
    learned_hw: Profile | None = None,
    predict: Predictor | None = None,
) -> Validation:
    """Price every row of ``table`` on ``hw`` (and on ``learned_hw``) and compare.

    Rows are priced by ``predict``, by default ``pm``'s stage pipeline with
    ``base_params``; ``engines`` are the engine names a row may use; a
    malformed table raises :class:`migpolicy.errors.InputError` naming the row.
    """
    if predict is None:
        from migpolicy.hardware.predict import pipeline_predictor

        predict = pipeline_predictor(pm, base_params)
    table = Path(table)
    rows = read_table(table, engines)
    records = table_records(table)
    return Validation(
        profile=hw.name,
        table=table,
        rows=rows,
        records=[records[int(n)] for n in rows["row"]],
        predicted=predict(hw, rows),
        learned=None if learned_hw is None else predict(learned_hw, rows),
    )


def _varies(rows: np.ndarray, column: str) -> bool:
    return len(np.unique(rows[column])) > 1


def _x_axis(rows: np.ndarray) -> tuple[str, str]:
    """The column to draw along x, and its label: folio size unless the table fixes it."""
    if _varies(rows, "folio_bytes"):
        return "folio_bytes", "folio size (KiB)"
    if _varies(rows, "folio_count"):
        return "folio_count", "folios moved"
    return "workers", "workers"


def _series(rows: np.ndarray, x: str) -> list[tuple[str, np.ndarray]]:
    """Lines of one panel: per worker count, and per folio count where that varies too."""
    keys = [c for c in ("workers", "folio_count") if c != x]
    by_count = "folio_count" in keys and any(
        _varies(rows[(rows[x] == v) & (rows["workers"] == w)], "folio_count")
        for v in np.unique(rows[x]) for w in np.unique(rows["workers"]))
    if not by_count:
        keys = [k for k in keys if k != "folio_count"]
    out = []
    combos = sorted({tuple(int(r[k]) for k in keys) for r in rows})
    for combo in combos:
        mask = np.ones(len(rows), dtype=bool)
        for key, value in zip(keys, combo, strict=True):
            mask &= rows[key] == value
        label = ", ".join(
            f"{v} {'worker' if k == 'workers' else 'folio'}{'s' if v != 1 else ''}"
            for k, v in zip(keys, combo, strict=True))
        out.append((label or "observed", mask))
    return out


def check_plot_path(path: str | Path) -> str:
    """Check, before any work, that a plot can be written to ``path``; return its format.

    The extension must be one matplotlib writes (png, pdf, svg ...) and the
    destination writable (:func:`migpolicy.files.check_output`).
    """
    from matplotlib.backend_bases import FigureCanvasBase

    check_output(path, "plot")
    kind = Path(path).suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if kind not in formats:
        raise InputError(f"--plot {path}: unknown image format {kind or '(no extension)'!r}; "
                         f"expected one of {', '.join(sorted(formats))}")
    return kind


def plot(validation: Validation, path: str | Path) -> None:
    """Draw observed points and predicted lines, one panel per engine (placement, scope).

    Written atomically: an error leaves no partial image behind.
    """
    kind = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = validation.rows
    split = ["engine"] + [c for c in ("placement", "side", "scope") if _varies(rows, c)]
    panels = sorted({tuple(str(r[c]) for c in split) for r in rows})
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 4.4 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        mask = np.ones(len(rows), dtype=bool)
        for column, value in zip(split, panel, strict=True):
            mask &= rows[column] == value
        _draw_panel(ax, validation, np.flatnonzero(mask))
        ax.set_title(" · ".join(panel))
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    learned = " (dashed: learned model)" if validation.learned is not None else ""
    fig.suptitle(f"{validation.profile} vs {validation.table.name}: observed points, "
                 f"predicted lines{learned}")
    fig.tight_layout()
    try:
        with atomic_output(path, "wb", "plot") as handle:
            fig.savefig(handle, format=kind, dpi=110)
    finally:
        plt.close(fig)


def _draw_panel(ax: Any, validation: Validation, index: np.ndarray) -> None:
    from matplotlib import colormaps

    rows = validation.rows[index]
    x, label = _x_axis(rows)
    scale = 1024 if x == "folio_bytes" else 1
    series = _series(rows, x)
    colors = iter(colormaps["viridis"](np.linspace(0, 0.9, len(series))))
    for name, mask in series:
        order = np.argsort(rows[x][mask])
        xs = rows[x][mask][order] / scale
        color = next(colors)
        ax.plot(xs, validation.observed[index][mask][order], "o", color=color, label=name)
        ax.plot(xs, validation.predicted[index][mask][order], "-", color=color)
        if validation.learned is not None:
            ax.plot(xs, validation.learned[index][mask][order], "--", color=color)
    ticks = np.unique(rows[x]) / scale
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks], rotation=45 if len(ticks) > 8 else 0)
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel("throughput (GB/s)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
