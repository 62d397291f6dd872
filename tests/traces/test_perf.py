"""The perf script reader of sampled data addresses: a recorded trace, a live recording,
and a property test against the fields it was given."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.traces import OP_READ, OP_UNKNOWN, OP_WRITE, TraceSource, open_trace
from migpolicy.traces.fmt_perf import read_perf_samples
from tests.traces.conftest import DATA

sample = st.tuples(
    st.sampled_from(["sort", "kworker/0:1", "my prog"]),
    st.integers(1, 4_000_000),
    st.integers(0, 99_999),
    st.integers(0, 999_999),
    st.one_of(st.none(), st.integers(1, 10**6)),
    st.sampled_from([("page-faults", ""), ("cpu/mem-loads,ldlat=30/P", " |OP LOAD|LVL L1 hit"),
                     ("cpu/mem-stores/P", " |OP STORE|"), ("minor-faults", " 401136 main+0x6")]),
    st.integers(1, 2**47),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(sample, min_size=1, max_size=40), st.booleans())
def test_fields_are_read_back(samples, with_cpu) -> None:
    lines = []
    for comm, tid, sec, usec, period, (event, rest), addr in samples:
        cpu = " [003]" if with_cpu else ""
        count = f" {period:10d}" if period is not None else ""
        lines.append(f"{comm:>16} {tid:5d}{cpu} {sec}.{usec:06d}:{count} {event}: "
                     f"{addr:16x}{rest}")
    source = TraceSource("t", io.BytesIO("\n".join(lines).encode()), 4096)
    events = np.concatenate(list(read_perf_samples(source)))
    assert events["t_ns"].tolist() == [s[2] * 10**9 + s[3] * 1000 for s in samples]
    assert events["page"].tolist() == [s[6] >> 12 for s in samples]
    assert events["weight"].tolist() == [float(s[4] or 1) for s in samples]
    assert events["tenant"].tolist() == [s[1] for s in samples]
    kinds = {"page-faults": OP_UNKNOWN, "minor-faults": OP_UNKNOWN,
             "cpu/mem-loads,ldlat=30/P": OP_READ, "cpu/mem-stores/P": OP_WRITE}
    assert events["op"].tolist() == [kinds[s[5][0]] for s in samples]


def test_recorded_page_faults(builtin_pm) -> None:
    with gzip.open(DATA / "sort.perf.gz", "rt") as handle:
        lines = [line.split() for line in handle if line.strip()]
    trace = open_trace(DATA / "sort.perf.gz", builtin_pm)
    events = np.concatenate(list(trace.chunks()))
    assert trace.meta.source_format == "perf"
    assert len(events) == len(lines)
    assert trace.page_table.tolist() == list(dict.fromkeys(
        int(words[-1], 16) // 4096 * 4096 for words in lines))


def test_line_without_address_is_named(tmp_path: Path, builtin_pm) -> None:
    path = tmp_path / "faults.txt"
    path.write_text("sort 10731 744.303215: 1 page-faults: 559c22ddc548\n"
                    "sort 10731 744.303232: 1 page-faults:\n")
    with pytest.raises(InputError, match=r"faults.txt: line 2: expected a perf script sample"):
        list(open_trace(path, builtin_pm, fmt="perf").chunks())


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf is not installed")
def test_live_perf_recording(tmp_path: Path, builtin_pm) -> None:
    data = tmp_path / "perf.data"
    record = subprocess.run(["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-o",
                             str(data), "--", "/bin/true"], capture_output=True, timeout=60)
    if record.returncode != 0:
        pytest.skip(f"perf record cannot run here: {record.stderr.decode()[:200]}")
    script = subprocess.run(["perf", "script", "-i", str(data), "-F",
                             "comm,tid,time,period,event,addr"], capture_output=True, timeout=60,
                            check=True)
    path = tmp_path / "faults.script"
    path.write_bytes(script.stdout)
    samples = [line for line in script.stdout.decode().splitlines() if line.strip()]
    trace = open_trace(path, builtin_pm)
    assert sum(len(c) for c in trace.chunks()) == len(samples) > 10


def test_kernel_addresses_are_skipped() -> None:
    text = ("prog 7 1.000001: 1 page-faults: ffffffff817554ea\n"
            "prog 7 1.000002: 1 page-faults: 7f45d6a31b70\n")
    events = np.concatenate(list(read_perf_samples(TraceSource("t", io.BytesIO(text.encode()),
                                                               4096))))
    assert events["page"].tolist() == [0x7F45D6A31B70 >> 12]


def test_default_perf_script_output_is_refused(tmp_path: Path, builtin_pm) -> None:
    path = tmp_path / "default.script"
    path.write_text("python3  5008   302.026842:          1 page-faults:      7f45d6a31b70 "
                    "_start+0x0 (/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)\n")
    with pytest.raises(InputError, match=r"line 1: perf script printed the instruction pointer"):
        list(open_trace(path, builtin_pm).chunks())
    with_addr = tmp_path / "addr.script"  # perf script -F +addr: the address, then the ip
    with_addr.write_text("python3  5008   302.026846:          1 page-faults:     7f45d6a4ae06 "
                         "_rtld_global+0xde6 (/usr/lib/ld.so)     7f45d6a327ad _dl_start+0x3d "
                         "(/usr/lib/ld.so)\n")
    trace = open_trace(with_addr, builtin_pm)
    assert np.concatenate(list(trace.chunks()))["page"].tolist() == [0]
    assert trace.page_table.tolist() == [0x7F45D6A4A000]
