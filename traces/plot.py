"""A time x address heatmap of access intensity, like damo's, for sparse address spaces.

Processes touch a few mappings scattered over a 47-bit address space (heap
near the binary, libraries and stack near the top): plotted on a linear
address axis they would be a few invisible lines. The plot keeps the address
order but collapses every gap of more than 1 MiB between touched pages to a
thin separator, and labels each remaining mapping with its start address and
size. Cells are summed access weights, on a log colour scale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy.files import atomic_output

__all__ = ["GAP_BYTES", "collapse_gaps", "plot_heatmap"]

#: Gaps between touched pages larger than this are collapsed.
GAP_BYTES = 1 << 20


def collapse_gaps(numbers: np.ndarray, gap_pages: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Map page numbers onto a compact axis, keeping order and collapsing large gaps.

    Returns ``(y, starts, length)``: the position of each page on the compact
    axis, the index in ``sorted(numbers)`` where each segment starts, and the
    axis length. Segments are separated by 1% of the touched span.
    """
    order = np.argsort(numbers, kind="stable")
    ordered = numbers[order]
    gaps = np.diff(ordered)
    breaks = np.flatnonzero(gaps > gap_pages) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.concatenate([starts, [len(ordered)]]))
    seg = np.repeat(np.arange(len(starts)), lengths)
    extents = ordered[np.concatenate([breaks - 1, [len(ordered) - 1]])] - ordered[starts] + 1
    separator = max(1.0, 0.01 * float(extents.sum()))
    offsets = np.concatenate([[0.0], np.cumsum(extents + separator)[:-1]])
    y_sorted = offsets[seg] + (ordered - ordered[starts][seg])
    y = np.empty(len(numbers), dtype=np.float64)
    y[order] = y_sorted
    length = float(offsets[-1] + extents[-1])
    return y, starts, length


def plot_heatmap(trace: Any, out: Path, time_bins: int, address_bins: int, title: str = "",
                 on_chunk: Callable[[np.ndarray], None] | None = None) -> int:
    """Draw the heatmap of ``trace`` into the PNG ``out``; return the number of mappings shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if trace.meta.events is None:  # a streamed trace: one pass for the page table and times
        for _ in trace.chunks():
            pass
    meta = trace.meta
    numbers = trace.page_numbers
    y, starts, length = collapse_gaps(numbers, max(2, GAP_BYTES // meta.page_size))
    row = np.minimum((y / length * address_bins).astype(np.int64), address_bins - 1)
    t0, span = meta.t_first_ns, max(1, meta.t_last_ns - meta.t_first_ns + 1)
    grid = np.zeros(time_bins * address_bins)
    for events in trace.chunks():
        col = (events["t_ns"] - t0) * time_bins // span
        cells = np.clip(col, 0, time_bins - 1) * address_bins + row[events["page"]]
        grid += np.bincount(cells, weights=events["weight"], minlength=len(grid))
        if on_chunk is not None:
            on_chunk(events)
    grid = grid.reshape(time_bins, address_bins).T
    ordinal = meta.clock == "ordinal"
    scale, unit = (1e6, "million records") if ordinal else (1e9, "s")
    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    positive = grid[grid > 0]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if len(positive) else None
    image = ax.imshow(np.where(grid > 0, grid, np.nan), origin="lower", aspect="auto",
                      interpolation="nearest", norm=norm, cmap="viridis",
                      extent=(0, span / scale, 0, length))
    fig.colorbar(image, ax=ax, label="accesses per cell")
    ordered = np.sort(numbers)
    ends = np.concatenate([starts[1:] - 1, [len(ordered) - 1]])
    shown = starts if len(starts) <= 24 else starts[np.linspace(0, len(starts) - 1, 24).astype(int)]
    sorted_y = np.sort(y)
    for i, start in enumerate(starts):
        if i:
            ax.axhline(sorted_y[start] - 0.5, color="0.5", linewidth=0.6, linestyle=":")
    labels = []
    for start in shown:
        end = ends[np.searchsorted(starts, start)]
        size = (ordered[end] - ordered[start] + 1) * meta.page_size
        labels.append(f"{hex(int(ordered[start]) * meta.page_size)} ({_size(size)})")
    ax.set_yticks(sorted_y[shown], labels, fontsize=7)
    ax.set_xlabel(f"time ({unit} from the first event)")
    ax.set_ylabel("address (gaps > 1 MiB collapsed)")
    ax.set_title(f"{title} — {meta.source_format}, {meta.distinct_pages:,} pages of "
                 f"{_size(meta.page_size)}, {len(starts)} mapping(s)", fontsize=9)
    fig.tight_layout()
    with atomic_output(out, what="plot") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
    return len(starts)


def _size(nbytes: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"
