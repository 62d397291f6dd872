"""DAMON readers: the real damo recordings (totals against the regions themselves), a plain
JSON copy, the perf script text, and property tests of both parsers."""

from __future__ import annotations

import io
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.traces import OP_UNKNOWN, TraceSource, open_trace
from migpolicy.traces.fmt_damon import read_damo_json, read_damon_perf


def _region_total(records: list[dict], page_size: int) -> float:
    """Sum of nr_accesses x region size / page size, read straight from the JSON."""
    total = 0
    for record in records:
        for snap in record["snapshots"]:
            for region in snap["regions"]:
                size = int(region["end"].replace(",", "")) - int(region["start"].replace(",", ""))
                total += region["nr_accesses"]["samples"] * size
    return total / page_size


def _events(trace) -> np.ndarray:
    return np.concatenate(list(trace.chunks()))


@pytest.mark.parametrize("name", ["damon.data", "damon.data.json_compressed"])
def test_damo_record_totals_agree_with_regions(name: str, damo_dir: Path, builtin_pm) -> None:
    records = json.loads(zlib.decompress((damo_dir / name).read_bytes()))
    trace = open_trace(damo_dir / name, builtin_pm, page_size="2M")
    events = _events(trace)
    assert trace.meta.source_format == "damo"
    assert events["weight"].sum() == pytest.approx(_region_total(records, 2 << 20), rel=1e-12)
    assert (events["op"] == OP_UNKNOWN).all()
    snapshots = records[0]["snapshots"]
    assert len(snapshots) == 543
    intervals = [int(s["end_time"]) - int(s["start_time"]) for s in snapshots]
    assert trace.meta.epoch_ns == int(np.median(intervals))


def test_plain_json_at_4k_pages_is_exact(damo_dir: Path, tmp_path: Path, builtin_pm) -> None:
    records = json.loads(zlib.decompress((damo_dir / "damon.data").read_bytes()))
    records[0]["snapshots"] = records[0]["snapshots"][:60]  # keep the test fast
    plain = tmp_path / "damon.json"
    plain.write_text(json.dumps(records, indent=1))
    trace = open_trace(plain, builtin_pm)
    events = _events(trace)
    assert events["weight"].sum() == _region_total(records, 4096)
    assert set(np.unique(events["weight"])) <= {
        float(r["nr_accesses"]["samples"]) for s in records[0]["snapshots"] for r in s["regions"]}
    assert trace.meta.t_first_ns >= int(records[0]["snapshots"][0]["start_time"])


def test_perf_script_totals_agree_with_lines(damo_dir: Path, builtin_pm) -> None:
    total = 0
    snapshots = 0
    previous_end = None
    for line in (damo_dir / "perf.data.script").read_text().splitlines():
        start, end, accesses = map(int, re.search(r"(\d+)-(\d+): (\d+)", line).groups())
        total += accesses * (end - start)
        snapshots += previous_end is None or start < previous_end
        previous_end = end
    trace = open_trace(damo_dir / "perf.data.script", builtin_pm, page_size="2M")
    events = _events(trace)
    assert trace.meta.source_format == "damon-perf"
    assert events["weight"].sum() == pytest.approx(total / (2 << 20), rel=1e-12)
    from migpolicy.traces.stats import trace_stats

    stats = trace_stats(open_trace(damo_dir / "perf.data.script", builtin_pm, page_size="2M"))
    assert stats.epoch == "snapshot" and 0 < stats.epochs <= snapshots


regions = st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 1 << 24),
                             st.integers(0, 40)), min_size=1, max_size=6)


def _expected(snaps: list[list[tuple[int, int, int]]], page_size: int) -> float:
    return sum(acc * size for regs in snaps for _, size, acc in regs) / page_size


@settings(max_examples=60, deadline=None)
@given(st.lists(regions, min_size=1, max_size=5), st.sampled_from([4096, 2 << 20]),
       st.booleans(), st.booleans())
def test_damo_json_property(snaps, page_size, compress, commas) -> None:
    def number(value: int) -> str:
        return f"{value:,}" if commas else str(value)

    record = {"target_id": 7, "snapshots": [
        {"start_time": str(1000 * i), "end_time": str(1000 * i + 900),
         "regions": [{"start": number(s), "end": number(s + size),
                      "nr_accesses": {"samples": acc, "percent": None}}
                     for s, size, acc in regs]}
        for i, regs in enumerate(snaps)]}
    raw = json.dumps([record]).encode()
    source = TraceSource("t", io.BytesIO(zlib.compress(raw) if compress else raw), page_size)
    chunks = list(read_damo_json(source))
    total = sum(float(c["weight"].sum()) for c in chunks)
    assert total == pytest.approx(_expected(snaps, page_size), rel=1e-9, abs=1e-9)
    for chunk in chunks:
        assert set(chunk["t_ns"].tolist()) <= {1000 * i for i in range(len(snaps))}
    assert source.hints["epoch_ns"] == 900


@settings(max_examples=60, deadline=None)
@given(st.lists(regions, min_size=1, max_size=5), st.sampled_from([4096, 2 << 20]),
       st.booleans())
def test_damon_perf_property(snaps, page_size, with_age) -> None:
    lines = []
    for i, regs in enumerate(snaps):
        ordered = sorted(regs)
        cursor = 0
        for start, size, acc in ordered:
            start = max(start, cursor)
            cursor = start + size
            age = " 3" if with_age else ""
            lines.append(f"       kdamond.0  4452 [000] {100 + i}.000{i:03d}: "
                         f"damon:damon_aggregated: target_id=18446623435582458880 "
                         f"nr_regions={len(regs)} {start}-{start + size}: {acc}{age}")
    source = TraceSource("t", io.BytesIO("\n".join(lines).encode()), page_size)
    total = sum(float(c["weight"].sum()) for c in read_damon_perf(source))
    assert total == pytest.approx(_expected(snaps, page_size), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("content", "message"), [
    (b"[{\"snapshots\": [{\"start_time\": \"1\", \"end_time\": \"2\", \"regions\": "
     b"[{\"start\": \"4,096\", \"end\": \"x\", \"nr_accesses\": {\"samples\": 1}}]}]}]",
     r"record 1 snapshot 1 region 1 end: expected a number, got 'x'"),
    (b"[{\"snapshots\": [{\"start_time\": \"1\", \"end_time\": \"2\", \"regions\": 5}]}]",
     r"record 1 snapshot 1: expected an object with a 'regions' list"),
    (b"[{\"snapshots\": [{\"regions\": []", r"line 1: not valid damo record JSON"),
])
def test_bad_damo_json_names_the_record(content: bytes, message: str, tmp_path: Path,
                                        builtin_pm) -> None:
    path = tmp_path / "damon.data"
    path.write_bytes(zlib.compress(content))
    with pytest.raises(InputError, match=re.escape(str(path)) + ": " + message):
        _events(open_trace(path, builtin_pm, fmt="damo"))


def test_truncated_damo_record(damo_dir: Path, tmp_path: Path, builtin_pm) -> None:
    cut = tmp_path / "damon.data"
    cut.write_bytes((damo_dir / "damon.data").read_bytes()[:5000])
    with pytest.raises(InputError, match="damo record is corrupt or truncated"):
        _events(open_trace(cut, builtin_pm))


def test_garbage_line_in_perf_script(tmp_path: Path, builtin_pm) -> None:
    path = tmp_path / "perf.script"
    good = ("kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: target_id=1 "
            "nr_regions=2 4096-8192: 3\n")
    path.write_text(good + good.replace("4096-8192", "8192-4096x"))
    with pytest.raises(InputError, match=r"perf.script: line 2: expected a damon:damon_aggregated"):
        _events(open_trace(path, builtin_pm))
