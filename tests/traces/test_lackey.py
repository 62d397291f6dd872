"""The lackey reader: real recorded traces, a live recording, property tests against a
line-by-line reference parser, straddling accesses, malformed lines."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.traces import OP_MODIFY, OP_READ, OP_WRITE, TraceSource, fmt_lackey, open_trace
from tests.traces.conftest import DATA

OPS = {"L": OP_READ, "S": OP_WRITE, "M": OP_MODIFY, "I": OP_READ}


def reference(text: str, page_size: int = 4096, instructions: bool = False) -> list[tuple]:
    """A plain line loop: (t, page, op, weight) per event, straddles split in halves.

    The clock counts the lines that become events (fetches only when counted).
    """
    out = []
    record = 0
    for line in text.splitlines():
        if not line or line.startswith(("==", "--")):
            continue
        kind = line[:2].strip()
        addr_text, size_text = line[3:].split(",")
        addr, size = int(addr_text, 16), max(int(size_text), 1)
        if kind != "I" or instructions:
            first, last = addr // page_size, (addr + size - 1) // page_size
            if first == last:
                out.append((record, first, OPS[kind], 1.0))
            else:
                out += [(record, first, OPS[kind], 0.5), (record, last, OPS[kind], 0.5)]
            record += 1
    return out


def parse(text: str, page_size: int = 4096, instructions: bool = False) -> list[tuple]:
    source = TraceSource("t", io.BytesIO(text.encode()), page_size,
                         {"instructions": instructions})
    chunks = list(fmt_lackey.read_lackey(source))
    events = np.concatenate(chunks) if chunks else np.empty(0, dtype=fmt_lackey.EVENT_DTYPE)
    return list(zip(events["t_ns"].tolist(), events["page"].tolist(), events["op"].tolist(),
                    events["weight"].tolist(), strict=True))


record_line = st.builds(
    lambda kind, addr, pad, size: f"{kind}{addr:x}".replace(f"{addr:x}", f"{addr:0{pad}x}")
    + f",{size}",
    st.sampled_from(["I  ", " L ", " S ", " M "]),
    st.integers(0, 2**48),
    st.integers(1, 16),  # lackey pads to 8 digits; any width up to 16 is read
    st.integers(1, 64),
)
message_line = st.sampled_from(["==4242== Lackey, an example Valgrind tool", "==1== ", "",
                                "--77-- warning: something"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(record_line, record_line, message_line), max_size=60),
       st.sampled_from([4096, 8192, 2 << 20]), st.booleans(), st.integers(16, 200))
def test_matches_reference_parser(lines, page_size, instructions, block) -> None:
    text = "\n".join(lines) + ("\n" if lines else "")
    original = fmt_lackey.BLOCK
    fmt_lackey.BLOCK = block  # small blocks: lines cut across reads are carried over
    try:
        assert parse(text, page_size, instructions) == reference(text, page_size, instructions)
    finally:
        fmt_lackey.BLOCK = original


def test_straddling_access_counts_half_on_each_page() -> None:
    text = " L 0ffc,8\n S 2000,4\n M 2ffe,2\n"
    assert parse(text) == [(0, 0, OP_READ, 0.5), (0, 1, OP_READ, 0.5), (1, 2, OP_WRITE, 1.0),
                           (2, 2, OP_MODIFY, 1.0)]


def test_last_line_without_newline_and_instruction_clock() -> None:
    assert parse("I  0400000,3\n L 1000,4") == [(0, 1, OP_READ, 1.0)]
    assert parse("I  0400000,3\n L 1000,4", instructions=True) == [
        (0, 0x400, OP_READ, 1.0), (1, 1, OP_READ, 1.0)]


@pytest.mark.parametrize(("text", "line"), [
    (" L 1000,4\n X 1000,4\n", 2),
    (" L 1000,4\n\n L 10zz,4\n", 3),
    (" L 1000\n", 1),
    (" L 1000,\n", 1),
    (" S 12345678901234567,8\n", 1),
    ("hello world\n", 1),
    (" L 1000,4x\n", 1),
])
def test_garbage_line_is_named(text: str, line: int) -> None:
    with pytest.raises(ValueError, match=rf"^line {line}: expected a lackey line"):
        parse(text)


def _count_lines(text: str) -> dict[str, int]:
    counts = {"L": 0, "S": 0, "M": 0}
    for line in text.splitlines():
        if line[:1] == " " and line[1:2] in counts:
            counts[line[1]] += 1
    return counts


@pytest.mark.parametrize("name", ["true.lackey.gz", "sort.lackey.xz"])
def test_recorded_trace_agrees_with_its_lines(name: str, builtin_pm) -> None:
    opener = gzip.open if name.endswith(".gz") else lzma.open
    with opener(DATA / name, "rt") as handle:
        counts = _count_lines(handle.read())
    from migpolicy.traces.stats import trace_stats

    stats = trace_stats(open_trace(DATA / name, builtin_pm)).as_dict()
    assert stats["format"] == "lackey" and stats["clock"] == "ordinal"
    assert (stats["reads"], stats["writes"], stats["modifies"]) == (
        counts["L"], counts["S"], counts["M"])
    assert stats["accesses"] == sum(counts.values())


def test_same_events_from_every_compression(tmp_path: Path, builtin_pm) -> None:
    import zstandard

    with gzip.open(DATA / "true.lackey.gz", "rb") as handle:
        raw = handle.read()
    variants = {"plain.txt": raw, "x.xz": lzma.compress(raw),
                "x.zst": zstandard.ZstdCompressor().compress(raw)}
    expected = np.concatenate(list(open_trace(DATA / "true.lackey.gz", builtin_pm).chunks()))
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        events = np.concatenate(list(open_trace(tmp_path / name, builtin_pm).chunks()))
        assert np.array_equal(events, expected), name


def test_truncated_compressed_trace_is_named(tmp_path: Path, builtin_pm) -> None:
    data = (DATA / "sort.lackey.xz").read_bytes()
    cut = tmp_path / "cut.xz"
    cut.write_bytes(data[: len(data) // 2])
    trace = open_trace(cut, builtin_pm)
    with pytest.raises(InputError, match=r"cut.xz: corrupt or truncated xz stream"):
        for _ in trace.chunks():
            pass


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_live_recording_converts(tmp_path: Path, builtin_pm) -> None:
    log = tmp_path / "echo.lackey"
    subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}",
                    "/bin/echo", "hi"], check=True, capture_output=True, timeout=120)
    counts = _count_lines(log.read_text())
    trace = open_trace(log, builtin_pm)
    events = np.concatenate(list(trace.chunks()))
    assert trace.meta.source_format == "lackey"
    assert events["weight"].sum() == sum(counts.values()) > 1000
    assert events["weight"][events["op"] == OP_WRITE].sum() == counts["S"]


def test_program_output_mixed_into_the_log_is_named() -> None:
    with pytest.raises(ValueError, match=r"^line 2: expected a lackey line .*Illegal instruction"):
        parse(" L 1000,4\nIllegal instruction\n S 2000,4\n")


def test_access_over_three_pages_is_named() -> None:
    with pytest.raises(ValueError, match=r"^line 2: an access of 9000 bytes spans more than two"):
        parse(" L 1000,4\n S 1ff0,9000\n")
