"""The native trace format: one Parquet file, columns ``t_ns page op tenant weight``.

Parquet is columnar and compressed (LZ4; times delta-encoded), streams by row group, and pandas,
DuckDB, polars and Spark read it directly. ``page`` holds dense indices in
address order (files written before: in first-touch order); the page table
(dense index → page number), the first-touch order and the
:class:`~migpolicy.traces.events.TraceMeta` live in the file's key-value
metadata, so one file is the whole trace:

- ``migpolicy.trace``: the metadata as JSON;
- ``migpolicy.page_table``: the page numbers (address // page_size) of the
  dense indices, delta-encoded int64, zlib-compressed, base64 text;
- ``migpolicy.first_touch``: the dense indices in the order the trace first
  touched them, int32, zlib-compressed, base64 text; absent when that is
  the dense order itself.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from migpolicy.errors import InputError
from migpolicy.traces.events import EventColumns, TraceMeta

__all__ = ["DEFAULT_CHUNK", "MAX_PAGES", "SCHEMA", "SCHEMA_V1", "NativeTrace", "NativeWriter",
           "write_native"]

META_KEY = b"migpolicy.trace"
TABLE_KEY = b"migpolicy.page_table"
FIRST_TOUCH_KEY = b"migpolicy.first_touch"
#: Rows per Parquet row group: large enough for fast scans, small enough to stream.
ROW_GROUP = 1 << 20
#: Events per chunk handed out by default: 8 MiB arrays, below glibc's largest mmap
#: threshold (32 MiB), so chunks reuse heap memory instead of faulting in fresh pages.
DEFAULT_CHUNK = 1 << 18

#: The columns as written: required (no null bitmaps to decode) and ``page`` 32-bit (half
#: the bytes to decompress): reading is about 2.5x faster than with :data:`SCHEMA_V1`.
SCHEMA = pa.schema([
    pa.field("t_ns", pa.int64(), nullable=False),
    pa.field("page", pa.int32(), nullable=False),
    pa.field("op", pa.uint8(), nullable=False),
    pa.field("tenant", pa.int32(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
])
#: The columns of files written before :data:`SCHEMA`: nullable, ``page`` 64-bit. Still read.
SCHEMA_V1 = pa.schema([
    ("t_ns", pa.int64()),
    ("page", pa.int64()),
    ("op", pa.uint8()),
    ("tenant", pa.int32()),
    ("weight", pa.float64()),
])
#: Distinct pages a native file can hold (``page`` is int32): 8 TiB of 4 KiB pages.
MAX_PAGES = 2**31


def _pack(values: np.ndarray, dtype: str) -> bytes:
    """``values`` as ``dtype`` (little-endian), zlib-compressed, as base64 text (a footer value)."""
    return base64.b64encode(zlib.compress(values.astype(dtype).tobytes(), 6))


def _unpack(text: bytes, dtype: str) -> np.ndarray:
    """The array :func:`_pack` wrote (raises ``ValueError`` or ``zlib.error`` when corrupt)."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text, validate=True)), dtype=dtype)


def _encode_table(numbers: np.ndarray) -> bytes:
    return _pack(np.diff(numbers.astype(np.int64), prepend=np.int64(0)), "<i8")


def _decode_table(text: bytes) -> np.ndarray:
    return np.cumsum(_unpack(text, "<i8")).astype(np.int64)


class NativeWriter:
    """Write event chunks (dense pages, first-touch order) to an open binary file as a native
    trace, its pages renumbered in address order.

    Call :meth:`write` per chunk and :meth:`close` once with the page table and
    the final metadata; the caller owns the file (use ``atomic_output``). The
    page table is complete only at the end, so the chunks are spooled to a
    temporary file beside the output (Arrow IPC, LZ4: about the size of the
    trace) and the Parquet file is encoded once at :meth:`close`, each page
    renumbered by its address: a replay then reads the pages in its own
    (address) order and need not look every event's page up. The first-touch
    order goes into the footer.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._writer: pq.ParquetWriter | None = None
        #: Beside the output (which needs the room anyway) rather than in a /tmp that may be
        #: memory; the system's temporary directory for a handle that is no file.
        self._spool_dir = _directory_of(handle)
        with _spooling(self._spool_dir):
            self._spool: IO[bytes] | None = tempfile.TemporaryFile(prefix="migpolicy-trace-",
                                                                   dir=self._spool_dir)
            self._spooled = pa.ipc.new_stream(self._spool, SCHEMA,
                                              options=pa.ipc.IpcWriteOptions(compression="lz4"))

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (``EVENT_DTYPE``, dense pages in first-touch order)."""
        pages = events["page"]
        if len(pages) and int(pages.max()) >= MAX_PAGES:
            raise InputError(f"the trace touches more than {MAX_PAGES:,} distinct pages, more "
                             "than a native trace holds; choose a larger --page-size")
        batch = pa.RecordBatch.from_arrays(
            [pa.array(np.ascontiguousarray(events[field.name]), type=field.type)
             for field in SCHEMA], schema=SCHEMA)
        with _spooling(self._spool_dir):
            self._spooled.write_batch(batch)

    def close(self, page_numbers: np.ndarray, meta: TraceMeta) -> None:
        """Encode the spooled events with pages in address order; write the page table, the
        first-touch order and the metadata into the footer."""
        with _spooling(self._spool_dir):
            self._spooled.close()
        numbers = np.asarray(page_numbers, dtype=np.int64)
        order = np.argsort(numbers)  # address id → first-touch id (distinct numbers)
        renumbered = bool(len(numbers) > 1 and (numbers[1:] < numbers[:-1]).any())
        address_id = np.empty(len(numbers), dtype=np.int32)
        address_id[order] = np.arange(len(numbers), dtype=np.int32)
        self._writer = pq.ParquetWriter(
            self._handle, SCHEMA, compression="lz4", use_dictionary=["op", "tenant", "weight"],
            column_encoding={"t_ns": "DELTA_BINARY_PACKED"}, write_statistics=["t_ns", "page"],
        )
        pending = SCHEMA.empty_table()  # rows not yet in a full row group
        self._spool.seek(0)
        for batch in pa.ipc.open_stream(self._spool):
            if renumbered:
                pages = address_id[batch.column(1).to_numpy()]
                batch = batch.set_column(1, SCHEMA.field("page"), pa.array(pages))
            pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
            if pending.num_rows >= ROW_GROUP:
                cut = pending.num_rows - pending.num_rows % ROW_GROUP
                self._writer.write_table(pending.slice(0, cut), row_group_size=ROW_GROUP)
                pending = pending.slice(cut)
        if pending.num_rows:
            self._writer.write_table(pending, row_group_size=ROW_GROUP)
        footer = {META_KEY: json.dumps(dataclasses.asdict(meta)).encode(),
                  TABLE_KEY: _encode_table(numbers[order])}
        if renumbered:
            footer[FIRST_TOUCH_KEY] = _pack(address_id, "<i4")
        self._writer.add_key_value_metadata(footer)
        self._writer.close()
        self._spool.close()
        self._spool = None

    def abort(self) -> None:
        """Stop writing after a failure (the caller discards the file)."""
        for closing in (self._spooled, self._writer, self._spool):
            with contextlib.suppress(Exception):
                if closing is not None:
                    closing.close()


def _directory_of(handle: IO[bytes]) -> str | None:
    """The directory of the file ``handle`` writes, or ``None`` when it is no named file."""
    name = getattr(handle, "name", None)
    return os.path.dirname(os.path.abspath(name)) if isinstance(name, str) else None


@contextlib.contextmanager
def _spooling(directory: str | None) -> Iterator[None]:
    """A full or missing directory while spooling is one sentence naming it."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot spool the trace to a temporary file in "
                         f"{directory or tempfile.gettempdir()}: {exc.strerror or exc}; it "
                         "needs about the size of the trace besides the trace itself") from None


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
        if self._file.schema_arrow.remove_metadata() not in (SCHEMA, SCHEMA_V1):
            raise InputError(f"{path}: columns {self._file.schema_arrow.names} do not match the "
                             f"native trace columns {SCHEMA.names}")
        try:
            fields = json.loads(kv[META_KEY])
            self.meta = TraceMeta(**fields)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: corrupt migpolicy trace metadata: {exc}") from None
        if not isinstance(self.meta.distinct_pages, int) or self.meta.distinct_pages < 0:
            raise InputError(f"{path}: corrupt migpolicy trace metadata: distinct_pages is "
                             f"{self.meta.distinct_pages!r}, expected a count")
        self._table: bytes | None = kv[TABLE_KEY]
        self._numbers = np.empty(0, dtype=np.int64)
        self._first_touch_text: bytes | None = kv.get(FIRST_TOUCH_KEY)
        self._first_touch: np.ndarray | None = None

    @property
    def page_table(self) -> np.ndarray:
        """Address (bytes) of each dense page index."""
        return self.page_numbers * self.meta.page_size

    @property
    def page_numbers(self) -> np.ndarray:
        """Page number (address // page size) of each dense page index.

        Decoded on first use (a million pages take tens of milliseconds): a
        reader that only streams the events never pays for it.
        """
        if self._table is not None:
            try:
                numbers = _decode_table(self._table)
            except (ValueError, zlib.error) as exc:
                raise InputError(f"{self.path}: corrupt migpolicy trace page table: {exc}"
                                 ) from None
            if len(numbers) != self.meta.distinct_pages:
                raise InputError(f"{self.path}: corrupt migpolicy trace page table: "
                                 f"{len(numbers)} pages, the metadata says "
                                 f"{self.meta.distinct_pages}")
            self._numbers, self._table = numbers, None
        return self._numbers

    @property
    def first_touch(self) -> np.ndarray | None:
        """The dense page indices in the order the trace first touched them; ``None`` when
        that is their own order (a file written before pages were in address order, or a
        trace that touched its pages in address order). Decoded on first use, like the
        page table."""
        if self._first_touch is not None or self._first_touch_text is None:
            return self._first_touch
        try:
            order = _unpack(self._first_touch_text, "<i4")
        except (ValueError, zlib.error) as exc:
            raise InputError(f"{self.path}: corrupt migpolicy trace first-touch order: {exc}"
                             ) from None
        count = self.meta.distinct_pages
        seen = np.zeros(count, dtype=bool)
        if len(order) == count and count and 0 <= order.min() and order.max() < count:
            seen[order] = True  # each page once: an order
        if not seen.all():
            raise InputError(f"{self.path}: corrupt migpolicy trace first-touch order: not an "
                             f"order of the {count} pages")
        self._first_touch, self._first_touch_text = order, None
        return order

    def chunks(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield ``EVENT_DTYPE`` arrays of at most ``events_per_chunk`` events, in file order."""
        for columns in self.columns(events_per_chunk):
            yield columns.structured()

    def columns(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[EventColumns]:
        """Yield the events as :class:`EventColumns`, at most ``events_per_chunk`` at a time.

        The fastest way to read the file: each column is a read-only view of
        the buffer pyarrow decoded into, nothing is copied. The next row group
        is decoded in a background thread (pyarrow releases the GIL) while the
        consumer works on the current one's chunks: two cores busy, at most
        about three decoded row groups in memory (a chunk the consumer still
        holds keeps its row group alive).
        """
        start = 0
        for batch in self._batches(events_per_chunk):
            out = EventColumns(*(column.to_numpy(zero_copy_only=False)
                                 for column in batch.columns))
            self._check(out, start)
            start += len(out)
            yield out

    def _batches(self, events_per_chunk: int) -> Iterator[pa.RecordBatch]:
        """The file's events in zero-copy slices of whole decoded row groups.

        A row group is decoded whole (pyarrow decodes its columns in parallel,
        and a whole one fastest) and handed out in batches of at most
        ``events_per_chunk`` events. A decoding error is one sentence.
        """
        start = 0
        groups = self._row_groups()
        while True:
            try:
                table = next(groups, None)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{self.path}: corrupt or truncated after event {start}: "
                                 f"{exc}") from None
            if table is None:
                return
            yield from table.to_batches(max_chunksize=events_per_chunk)
            start += table.num_rows

    def _row_groups(self) -> Iterator[pa.Table]:
        """The decoded row groups in order, the next one decoding while the caller has this one.

        A file of one row group is decoded right here: starting a thread would
        cost more than it saves (a tuner replays small traces thousands of times).
        """
        count = self._file.metadata.num_row_groups

        def decode(group: int) -> pa.Table:
            return self._file.read_row_group(group, use_threads=True)

        if count <= 1:
            yield from map(decode, range(count))
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(decode, 0)
            for group in range(1, count + 1):
                table = ahead.result()
                if group < count:
                    ahead = pool.submit(decode, group)
                yield table

    def _check(self, out: EventColumns, start: int) -> None:
        pages, count = out.page, self.meta.distinct_pages
        # one pass: a negative index is a huge unsigned one
        if len(pages) and pages.view(f"u{pages.itemsize}").max() >= count:
            bad = int(np.flatnonzero((pages < 0) | (pages >= count))[0])
            raise InputError(f"{self.path}: event {start + bad} names page {int(pages[bad])}, "
                             f"outside the page table of {count} pages")


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
