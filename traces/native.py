"""The native trace format: one Parquet file, columns ``t_ns page op tenant weight``.

Parquet is columnar and compressed (LZ4; times delta-encoded), streams by row group, and pandas,
DuckDB, polars and Spark read it directly. ``page`` holds dense indices in
first-touch order; the page table (dense index → page number) and the
:class:`~migpolicy.traces.events.TraceMeta` live in the file's key-value
metadata, so one file is the whole trace:

- ``migpolicy.trace``: the metadata as JSON;
- ``migpolicy.page_table``: the page numbers (address // page_size) of the
  dense indices, delta-encoded int64, zlib-compressed, base64 text.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from migpolicy.errors import InputError
from migpolicy.traces.events import EVENT_DTYPE, EventColumns, TraceMeta

__all__ = ["DEFAULT_CHUNK", "SCHEMA", "NativeTrace", "NativeWriter", "write_native"]

META_KEY = b"migpolicy.trace"
TABLE_KEY = b"migpolicy.page_table"
#: Rows per Parquet row group: large enough for fast scans, small enough to stream.
ROW_GROUP = 1 << 20
#: Events per chunk handed out by default: 8 MiB arrays, below glibc's largest mmap
#: threshold (32 MiB), so chunks reuse heap memory instead of faulting in fresh pages.
DEFAULT_CHUNK = 1 << 18

SCHEMA = pa.schema([
    ("t_ns", pa.int64()),
    ("page", pa.int64()),
    ("op", pa.uint8()),
    ("tenant", pa.int32()),
    ("weight", pa.float64()),
])


def _encode_table(numbers: np.ndarray) -> bytes:
    deltas = np.diff(numbers.astype(np.int64), prepend=np.int64(0))
    return base64.b64encode(zlib.compress(deltas.astype("<i8").tobytes(), 6))


def _decode_table(text: bytes) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(text, validate=True))
    return np.cumsum(np.frombuffer(raw, dtype="<i8")).astype(np.int64)


class NativeWriter:
    """Write event chunks (dense pages) to an open binary file as a native trace.

    Call :meth:`write` per chunk and :meth:`close` once with the page table and
    the final metadata; the caller owns the file (use ``atomic_output``).
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._writer = pq.ParquetWriter(
            handle, SCHEMA, compression="lz4", use_dictionary=["op", "tenant", "weight"],
            column_encoding={"t_ns": "DELTA_BINARY_PACKED"}, write_statistics=["t_ns", "page"],
        )
        self._pending = SCHEMA.empty_table()  # rows not yet in a full row group

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (``EVENT_DTYPE``, dense pages), buffered into full row groups.

        Each chunk is split into columns once; buffered rows are Arrow tables
        sliced without copies until a row group is full.
        """
        batch = pa.RecordBatch.from_arrays(
            [pa.array(np.ascontiguousarray(events[name])) for name in SCHEMA.names],
            schema=SCHEMA)
        self._pending = pa.concat_tables([self._pending, pa.Table.from_batches([batch])])
        if self._pending.num_rows >= ROW_GROUP:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        rows = self._pending.num_rows
        cut = rows if final else rows - rows % ROW_GROUP
        if cut:
            self._writer.write_table(self._pending.slice(0, cut), row_group_size=ROW_GROUP)
        self._pending = self._pending.slice(cut)

    def close(self, page_numbers: np.ndarray, meta: TraceMeta) -> None:
        """Flush the last rows and write the page table and metadata into the footer."""
        self._flush(final=True)
        self._writer.add_key_value_metadata({
            META_KEY: json.dumps(dataclasses.asdict(meta)).encode(),
            TABLE_KEY: _encode_table(page_numbers),
        })
        self._writer.close()

    def abort(self) -> None:
        """Stop writing after a failure (the caller discards the file)."""
        with contextlib.suppress(Exception):
            self._writer.close()


class NativeTrace:
    """A native trace file opened for streaming: metadata and page table known up front."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # pre-buffering keeps every row group read so far: memory would grow with length
            self._file = pq.ParquetFile(path, pre_buffer=False)
            kv: dict[bytes, bytes] = self._file.metadata.metadata or {}
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
        if META_KEY not in kv or TABLE_KEY not in kv:
            raise InputError(f"{path}: a Parquet file without migpolicy trace metadata; "
                             "expected a file written by `migpolicy trace convert` or `gen`")
        if self._file.schema_arrow.remove_metadata() != SCHEMA:
            raise InputError(f"{path}: columns {self._file.schema_arrow.names} do not match the "
                             f"native trace columns {SCHEMA.names}")
        try:
            fields = json.loads(kv[META_KEY])
            self.meta = TraceMeta(**fields)
            self._numbers = _decode_table(kv[TABLE_KEY])
        except (ValueError, TypeError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt migpolicy trace metadata: {exc}") from None

    @property
    def page_table(self) -> np.ndarray:
        """Address (bytes) of each dense page index."""
        return self._numbers * self.meta.page_size

    @property
    def page_numbers(self) -> np.ndarray:
        """Page number (address // page size) of each dense page index."""
        return self._numbers

    def chunks(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield ``EVENT_DTYPE`` arrays of at most ``events_per_chunk`` events, in file order."""
        for columns in self.columns(events_per_chunk):
            out = np.empty(len(columns), dtype=EVENT_DTYPE)
            for name in SCHEMA.names:
                out[name] = columns[name]
            yield out

    def columns(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[EventColumns]:
        """Yield the events as :class:`EventColumns`, at most ``events_per_chunk`` at a time.

        The fastest way to read the file: each column is a read-only view of
        the buffer pyarrow decoded into, nothing is copied. The next batch is
        decoded in a background thread (pyarrow releases the GIL) while the
        consumer works on the current one: two cores busy, two batches in memory.
        """
        start = 0
        for batch in self._batches(events_per_chunk):
            out = EventColumns(*(column.to_numpy(zero_copy_only=False)
                                 for column in batch.columns))
            self._check(out, start)
            start += len(out)
            yield out

    def _batches(self, events_per_chunk: int) -> Iterator[pa.RecordBatch]:
        """The file's record batches, the next one decoding while the caller has this one.

        A file of one batch is decoded right here: starting a thread would
        cost more than it saves (a tuner replays small traces thousands of times).
        """
        batches = self._file.iter_batches(batch_size=events_per_chunk, use_threads=True)
        if self._file.metadata.num_rows <= events_per_chunk:
            yield from self._guarded(lambda: next(batches, None))
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(next, batches, None)

            def following() -> pa.RecordBatch | None:
                nonlocal pending
                batch = pending.result()
                if batch is not None:
                    pending = pool.submit(next, batches, None)
                return batch

            yield from self._guarded(following)

    def _guarded(self, fetch: Callable[[], pa.RecordBatch | None]) -> Iterator[pa.RecordBatch]:
        """Batches from ``fetch`` until it returns ``None``; a decoding error is one sentence."""
        start = 0
        while True:
            try:
                batch = fetch()
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{self.path}: corrupt or truncated after event {start}: "
                                 f"{exc}") from None
            if batch is None:
                return
            start += batch.num_rows
            yield batch

    def _check(self, out: EventColumns, start: int) -> None:
        pages = out.page
        if len(pages) and (pages.min() < 0 or pages.max() >= len(self._numbers)):
            bad = int(np.flatnonzero((pages < 0) | (pages >= len(self._numbers)))[0])
            raise InputError(f"{self.path}: event {start + bad} names page {int(pages[bad])}, "
                             f"outside the page table of {len(self._numbers)} pages")


def write_native(trace: Any, handle: IO[bytes], command: str = "",
                 on_chunk: Any = None) -> TraceMeta:
    """Stream ``trace`` (any opened trace) into ``handle`` as a native trace; return its metadata.

    ``on_chunk(events)`` is called after each chunk (progress bars).
    """
    writer = NativeWriter(handle)
    try:
        for events in trace.chunks(ROW_GROUP):
            writer.write(events)
            if on_chunk is not None:
                on_chunk(events)
        meta = dataclasses.replace(trace.meta, command=command or trace.meta.command)
        writer.close(trace.page_numbers, meta)
    except BaseException:
        writer.abort()
        raise
    return meta
