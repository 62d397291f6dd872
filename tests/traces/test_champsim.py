"""ChampSim binary traces: operands become reads and writes; a cut record is named."""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pytest

from migpolicy.errors import InputError
from migpolicy.traces import OP_READ, OP_WRITE, open_trace
from migpolicy.traces.fmt_champsim import RECORD_DTYPE


def _records(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    records = np.zeros(n, dtype=RECORD_DTYPE)
    records["ip"] = 0x400000 + 4 * np.arange(n)
    records["is_branch"] = rng.integers(0, 2, n)
    records["branch_taken"] = records["is_branch"] * rng.integers(0, 2, n)
    mask_src = rng.random((n, 4)) < 0.3
    mask_dst = rng.random((n, 2)) < 0.2
    records["source_memory"] = np.where(mask_src, rng.integers(1, 2**40, (n, 4)), 0)
    records["destination_memory"] = np.where(mask_dst, rng.integers(1, 2**40, (n, 2)), 0)
    return records


def test_operands_become_events(tmp_path: Path, builtin_pm) -> None:
    records = _records(5000)
    path = tmp_path / "trace.champsimtrace.xz"
    path.write_bytes(lzma.compress(records.tobytes()))
    trace = open_trace(path, builtin_pm)
    events = np.concatenate(list(trace.chunks()))
    assert trace.meta.source_format == "champsim" and trace.meta.clock == "ordinal"
    reads = int((records["source_memory"] != 0).sum())
    writes = int((records["destination_memory"] != 0).sum())
    assert (events["op"] == OP_READ).sum() == reads and (events["op"] == OP_WRITE).sum() == writes
    first = records[0]
    expected = [a // 4096 * 4096 for a in [*first["source_memory"], *first["destination_memory"]]
                if a]
    got = trace.page_table[events["page"][events["t_ns"] == 0]].tolist()
    assert got == expected


def test_cut_record_is_named(tmp_path: Path, builtin_pm) -> None:
    path = tmp_path / "cut.xz"
    path.write_bytes(lzma.compress(_records(100).tobytes()[: 64 * 70 + 20]))
    with pytest.raises(InputError, match=r"cut.xz: record 71 is cut short: 20 of its 64 bytes"):
        list(open_trace(path, builtin_pm, fmt="champsim").chunks())
