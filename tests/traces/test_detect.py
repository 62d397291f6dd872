"""Formats are detected from content, never from names; wrong input gets one sentence."""

from __future__ import annotations

import gzip
import lzma
import shutil
from pathlib import Path

import pytest

from migpolicy.errors import InputError
from migpolicy.traces import open_trace, parse_page_size
from tests.traces.conftest import DATA


@pytest.mark.parametrize(("name", "fmt"), [("true.lackey.gz", "lackey"),
                                           ("sort.perf.gz", "perf")])
def test_detected_under_any_name(name: str, fmt: str, tmp_path: Path, builtin_pm) -> None:
    renamed = tmp_path / "trace.data"
    shutil.copy(DATA / name, renamed)
    assert open_trace(renamed, builtin_pm).meta.source_format == fmt


@pytest.mark.parametrize(("name", "fmt"), [("damon.data", "damo"),
                                           ("damon.data.json_compressed", "damo"),
                                           ("perf.data.script", "damon-perf")])
def test_damon_files_detected(name: str, fmt: str, damo_dir: Path, builtin_pm) -> None:
    assert open_trace(damo_dir / name, builtin_pm).format.name == fmt


def test_wrong_from_names_the_line_and_the_likely_format(tmp_path: Path, builtin_pm) -> None:
    with pytest.raises(InputError, match=r"sort.perf.gz: line 1: expected a lackey line .* "
                                         r"\(it looks like a perf trace: check --from\)"):
        list(open_trace(DATA / "sort.perf.gz", builtin_pm, fmt="lackey").chunks())
    plain = tmp_path / "true.lackey"
    plain.write_bytes(gzip.decompress((DATA / "true.lackey.gz").read_bytes()))
    with pytest.raises(InputError, match=r"not a readable Parquet file.*looks like a lackey"):
        open_trace(plain, builtin_pm, fmt="native")
    with pytest.raises(InputError, match=r"unknown trace format 'valgrind'; expected one of "):
        open_trace(DATA / "sort.lackey.xz", builtin_pm, fmt="valgrind")


def test_unreadable_inputs(tmp_path: Path, builtin_pm) -> None:
    with pytest.raises(InputError, match=r"is a directory; expected a trace file"):
        open_trace(tmp_path, builtin_pm)
    empty = tmp_path / "empty.out"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.out: the file is empty"):
        open_trace(empty, builtin_pm)
    text = tmp_path / "notes.txt"
    text.write_text("dear diary,\ntoday I traced nothing\n")
    with pytest.raises(InputError, match=r"notes.txt: cannot tell the trace format from its "
                                         r"content; expected one of champsim, damo"):
        open_trace(text, builtin_pm)


def test_trace_without_accesses(tmp_path: Path, builtin_pm) -> None:
    only_messages = tmp_path / "quiet.lackey.gz"
    with gzip.open(DATA / "true.lackey.gz", "rt") as handle:
        banner = [line for line in handle if line.startswith("==")]
    only_messages.write_bytes(gzip.compress("".join(banner).encode()))
    trace = open_trace(only_messages, builtin_pm)
    with pytest.raises(InputError, match=r"quiet.lackey.gz: the trace holds no memory accesses"):
        list(trace.chunks())


def test_corrupt_compressed_stream(tmp_path: Path, builtin_pm) -> None:
    bad = tmp_path / "bad.xz"
    bad.write_bytes(lzma.compress(b"x" * 10)[:8] + b"\0" * 40)
    with pytest.raises(InputError, match=r"bad.xz: corrupt xz stream"):
        open_trace(bad, builtin_pm)


@pytest.mark.parametrize(("text", "value"), [("4K", 4096), ("2M", 2 << 20), ("4096", 4096),
                                             ("1GiB", 1 << 30), (None, None)])
def test_page_sizes(text, value) -> None:
    assert parse_page_size(text) == value


@pytest.mark.parametrize("text", ["3K", "512", "2G", "huge"])
def test_bad_page_sizes(text) -> None:
    with pytest.raises(InputError, match="page size"):
        parse_page_size(text)
