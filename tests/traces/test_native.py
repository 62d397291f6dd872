"""The native format: a round trip keeps every event, the page table and the metadata; other
Parquet readers see plain columns; damaged files are named."""

from __future__ import annotations

import base64
import errno
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from migpolicy.errors import InputError
from migpolicy.traces import (
    EVENT_DTYPE,
    generated_trace,
    open_trace,
    trace_generators,
    write_native,
)
from migpolicy.traces.native import MAX_PAGES, ROW_GROUP, SCHEMA_V1, NativeTrace, NativeWriter
from tests.traces.conftest import DATA


def _write(trace, path: Path) -> None:
    with open(path, "wb") as handle:
        write_native(trace, handle, "migpolicy test")


def test_round_trip_keeps_events_and_pages(tmp_path: Path, builtin_pm) -> None:
    """Every event touches the same address; pages are renumbered in address order and the
    order they were first touched in is kept."""
    source = open_trace(DATA / "sort.lackey.xz", builtin_pm)
    original = np.concatenate(list(source.chunks()))
    path = tmp_path / "sort.parquet"
    _write(source, path)
    native = open_trace(path, builtin_pm)
    assert isinstance(native, NativeTrace)
    assert native.meta == source.meta.__class__(**{**source.meta.__dict__,
                                                    "command": "migpolicy test"})
    events = np.concatenate(list(native.chunks(100_000)))
    assert events.dtype == EVENT_DTYPE
    assert np.array_equal(native.page_table[events["page"]], source.page_table[original["page"]])
    rest = [name for name in EVENT_DTYPE.names if name != "page"]
    assert np.array_equal(events[rest], original[rest])
    assert (np.diff(native.page_numbers) > 0).all()
    assert np.array_equal(native.page_numbers[native.first_touch], source.page_numbers)
    # the first page touched is the first address lackey printed
    assert native.page_table[native.first_touch[0]] == 0x1FFF000000


def test_pages_touched_in_address_order_keep_no_first_touch_order(tmp_path, builtin_pm):
    trace = generated_trace(trace_generators(builtin_pm)["scan"], 5000, 300, 1, {})
    _write(trace, tmp_path / "scan.parquet")
    native = open_trace(tmp_path / "scan.parquet", builtin_pm)
    assert native.first_touch is None
    assert b"migpolicy.first_touch" not in pq.ParquetFile(tmp_path / "scan.parquet"
                                                           ).metadata.metadata


def test_plain_parquet_readers_see_the_columns(tmp_path: Path, builtin_pm) -> None:
    zipf = trace_generators(builtin_pm)["zipf"]
    trace = generated_trace(zipf, ROW_GROUP + 1000, 5000, 3, {})
    path = tmp_path / "zipf.parquet"
    _write(trace, path)
    table = pq.read_table(path)
    assert table.column_names == ["t_ns", "page", "op", "tenant", "weight"]
    assert table.num_rows == ROW_GROUP + 1000
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    meta = json.loads(pq.ParquetFile(path).metadata.metadata[b"migpolicy.trace"])
    assert meta["events"] == ROW_GROUP + 1000 and meta["source_format"] == "gen:zipf"
    assert table.column("page").to_numpy().max() + 1 == meta["distinct_pages"]


def test_files_of_the_first_schema_still_read(tmp_path: Path, builtin_pm) -> None:
    """Files written before pages became 32-bit and columns required read as they did."""
    trace = generated_trace(trace_generators(builtin_pm)["zipf"], 20_000, 500, 2, {})
    path = tmp_path / "now.parquet"
    _write(trace, path)
    assert pq.read_schema(path).field("page").type == "int32"
    old = tmp_path / "v1.parquet"
    kv = {k: v for k, v in pq.ParquetFile(path).metadata.metadata.items()
          if not k.startswith(b"ARROW")}
    pq.write_table(pq.read_table(path).cast(SCHEMA_V1).replace_schema_metadata(kv), old)
    assert pq.read_schema(old).field("page").type == "int64"
    now, before = open_trace(path, builtin_pm), open_trace(old, builtin_pm)
    assert np.array_equal(np.concatenate(list(before.chunks())),
                          np.concatenate(list(now.chunks())))
    assert before.meta == now.meta


def test_more_pages_than_the_format_holds_is_one_sentence(tmp_path: Path) -> None:
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["page"] = [0, 1, MAX_PAGES]
    with open(tmp_path / "big.parquet", "wb") as handle:
        writer = NativeWriter(handle)
        with pytest.raises(InputError, match=r"more than 2,147,483,648 distinct pages, more "
                                             r"than a native trace holds"):
            writer.write(events)
        writer.abort()


def test_chunks_are_bounded(tmp_path: Path, builtin_pm) -> None:
    trace = generated_trace(trace_generators(builtin_pm)["gups"], 50_000, 100, 1, {})
    path = tmp_path / "gups.parquet"
    _write(trace, path)
    sizes = [len(c) for c in open_trace(path, builtin_pm).chunks(7000)]
    assert max(sizes) <= 7000 and sum(sizes) == 50_000


def test_damaged_files_are_named(tmp_path: Path, builtin_pm) -> None:
    trace = generated_trace(trace_generators(builtin_pm)["scan"], 3000, 100, 1, {})
    good = tmp_path / "good.parquet"
    _write(trace, good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"cut.parquet: not a readable Parquet file"):
        open_trace(cut, builtin_pm)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pq.read_table(good), foreign)  # same columns, no migpolicy metadata
    with pytest.raises(InputError, match=r"foreign.parquet: a Parquet file without migpolicy"):
        open_trace(foreign, builtin_pm)
    with pytest.raises(InputError, match=r"cannot be read with --page-size 2097152"):
        open_trace(good, builtin_pm, page_size="2M")


def _with_metadata(good: Path, path: Path, **changed: bytes) -> Path:
    """A copy of native trace ``good`` whose footer metadata has ``changed`` values."""
    table = pq.read_table(good)
    kv = {**pq.ParquetFile(good).metadata.metadata,
          **{k.encode(): v for k, v in changed.items()}}
    kv = {k: v for k, v in kv.items() if not k.startswith(b"ARROW")}
    pq.write_table(table.replace_schema_metadata(kv), path)
    return path


def test_a_damaged_first_touch_order_is_named(tmp_path: Path, builtin_pm) -> None:
    trace = generated_trace(trace_generators(builtin_pm)["zipf"], 3000, 100, 1, {})
    good = tmp_path / "good.parquet"
    _write(trace, good)
    assert open_trace(good, builtin_pm).first_touch is not None
    repeated = np.zeros(100, dtype="<i4").tobytes()  # page 0, a hundred times
    for name, text in (("garbled", b"bm90IHpsaWI="),
                       ("repeated", base64.b64encode(zlib.compress(repeated)))):
        damaged = _with_metadata(good, tmp_path / f"{name}.parquet",
                                 **{"migpolicy.first_touch": text})
        with pytest.raises(InputError, match=rf"{name}.parquet: corrupt migpolicy trace "
                                             r"first-touch order"):
            open_trace(damaged, builtin_pm).first_touch  # noqa: B018


def test_a_damaged_page_table_or_page_count_is_named(tmp_path: Path, builtin_pm) -> None:
    """The page table is decoded on first use; its damage is named then, the events still read."""
    trace = generated_trace(trace_generators(builtin_pm)["scan"], 3000, 100, 1, {})
    good = tmp_path / "good.parquet"
    _write(trace, good)
    garbled = _with_metadata(good, tmp_path / "garbled.parquet",
                             **{"migpolicy.page_table": b"bm90IHpsaWI="})
    native = open_trace(garbled, builtin_pm)
    assert sum(len(c) for c in native.columns()) == 3000
    with pytest.raises(InputError, match=r"garbled.parquet: corrupt migpolicy trace page table"):
        native.page_numbers  # noqa: B018
    meta = json.loads(pq.ParquetFile(good).metadata.metadata[b"migpolicy.trace"])
    fewer = _with_metadata(good, tmp_path / "fewer.parquet", **{
        "migpolicy.trace": json.dumps({**meta, "distinct_pages": 10}).encode()})
    with pytest.raises(InputError, match=r"fewer.parquet: event \d+ names page \d+, outside "
                                         r"the page table of 10 pages"):
        sum(len(c) for c in open_trace(fewer, builtin_pm).columns())
    with pytest.raises(InputError, match=r"fewer.parquet: corrupt .* 100 pages, the metadata "
                                         r"says 10"):
        open_trace(fewer, builtin_pm).page_numbers  # noqa: B018
    unknown = _with_metadata(good, tmp_path / "unknown.parquet", **{
        "migpolicy.trace": json.dumps({**meta, "distinct_pages": None}).encode()})
    with pytest.raises(InputError, match=r"unknown.parquet: corrupt .* distinct_pages is None"):
        open_trace(unknown, builtin_pm)


def test_a_damaged_row_group_is_named_with_the_events_read_before_it(tmp_path, builtin_pm):
    """The second row group's first page header is overwritten: reading stops there, decoded in
    the background thread, with one sentence that says how far the file was good."""
    trace = generated_trace(trace_generators(builtin_pm)["zipf"], ROW_GROUP + 1000, 5000, 3, {})
    path = tmp_path / "damaged.parquet"
    _write(trace, path)
    offset = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * 64)
    native = open_trace(path, builtin_pm)
    with pytest.raises(InputError, match=rf"damaged.parquet: corrupt or truncated after event "
                                         rf"{ROW_GROUP}: "):
        sum(len(c) for c in native.columns())


class _FullDisk(io.BytesIO):
    """A temporary file on a full disk."""

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_temporary_directory_is_one_sentence(tmp_path: Path, builtin_pm, monkeypatch):
    """The writer spools the events before encoding them; no room for that names the place."""
    monkeypatch.setattr("tempfile.TemporaryFile", lambda **_: _FullDisk())
    trace = generated_trace(trace_generators(builtin_pm)["zipf"], 3000, 100, 1, {})
    with pytest.raises(InputError, match=rf"cannot spool the trace to a temporary file in "
                                         rf"{tmp_path}: No space left on device; it needs about "
                                         r"the size of the trace besides the trace itself"):
        _write(trace, tmp_path / "full.parquet")
