"""The heatmap: gaps collapse as computed by hand, and a PNG is written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from migpolicy.traces import open_trace
from migpolicy.traces.plot import collapse_gaps, plot_heatmap
from tests.traces.conftest import DATA


def test_collapse_gaps_by_hand() -> None:
    numbers = np.array([1001, 0, 2, 1, 1000])
    y, starts, length = collapse_gaps(numbers, gap_pages=256)
    # segments {0,1,2} (extent 3) and {1000,1001} (extent 2); separator max(1, 1% of 5) = 1
    assert y.tolist() == [5.0, 0.0, 2.0, 1.0, 4.0]
    assert starts.tolist() == [0, 3] and length == 6.0


def test_plot_writes_a_png(tmp_path: Path, builtin_pm) -> None:
    out = tmp_path / "sort.png"
    mappings = plot_heatmap(open_trace(DATA / "sort.lackey.xz", builtin_pm), out, 50, 40,
                            title="sort")
    assert mappings >= 2  # the binary's mappings and the stack, far apart
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sort.png"]
