"""Opening any trace for streaming: format detection, decompression, dense pages.

:func:`open_trace` is what replay, ``trace info`` and ``trace convert`` use:
it finds the format (``fmt`` or detected from the content), and returns a
trace whose :meth:`chunks` yields ``EVENT_DTYPE`` arrays with dense page
indices, whatever the source. Memory stays bounded: only the page table grows,
with the distinct pages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pluggy

from migpolicy.errors import InputError, PluginError
from migpolicy.files import input_file
from migpolicy.registries import collect
from migpolicy.traces.compression import STREAM_ERRORS, compression_of, open_decompressed
from migpolicy.traces.events import (
    EVENT_DTYPE,
    EventColumns,
    TraceFormat,
    TraceGenerator,
    TraceMeta,
)
from migpolicy.traces.native import DEFAULT_CHUNK
from migpolicy.traces.pages import PageTable
from migpolicy.units import parse_size

__all__ = ["DEFAULT_CHUNK", "DEFAULT_PAGE_SIZE", "GeneratedTrace", "StreamedTrace", "Trace",
           "detect_format", "generated_trace", "open_trace", "parse_page_size", "trace_columns",
           "trace_formats", "trace_generators"]

DEFAULT_PAGE_SIZE = 4096
#: How much decompressed content format detection looks at.
SNIFF_BYTES = 1 << 16


class Trace(Protocol):
    """What every opened trace offers (native or streamed)."""

    meta: TraceMeta

    @property
    def page_table(self) -> np.ndarray:
        """Address of each dense page index (complete once the trace has been read)."""

    @property
    def page_numbers(self) -> np.ndarray:
        """Page number (address // page size) of each dense page index."""

    @property
    def first_touch(self) -> np.ndarray | None:
        """Dense page indices in the order the trace first touched them; ``None`` when that
        is their own order (a streamed trace numbers pages as it meets them; a native file
        numbers them by address)."""

    def chunks(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield ``EVENT_DTYPE`` arrays of at most ``events_per_chunk`` events, dense pages."""


def trace_columns(trace: Trace, events_per_chunk: int = DEFAULT_CHUNK
                  ) -> Iterator[EventColumns]:
    """The trace's events as :class:`EventColumns` chunks, dense pages.

    A trace that reads columns natively (the native format) hands them over
    as they are decoded; any other trace's ``EVENT_DTYPE`` chunks are split
    into columns.
    """
    columns = getattr(trace, "columns", None)
    if columns is not None:
        yield from columns(events_per_chunk)
        return
    for chunk in trace.chunks(events_per_chunk):
        yield EventColumns.of(chunk)


def trace_formats(pm: pluggy.PluginManager) -> dict[str, TraceFormat]:
    """Every trace format the plugins register, by name (a name registered twice is an error)."""
    return collect(pm, "migpolicy_trace_formats", TraceFormat, "trace format",
                   lambda f: f.name)


def trace_generators(pm: pluggy.PluginManager) -> dict[str, TraceGenerator]:
    """Every trace generator the plugins register, by name."""
    return collect(pm, "migpolicy_trace_generators", TraceGenerator, "trace generator",
                   lambda g: g.name)


def parse_page_size(text: str | int | None) -> int | None:
    """``4K``, ``2M``, ``4096`` → bytes; a power of two from 4 KiB to 1 GiB, or ``None``."""
    if text is None:
        return None
    value = parse_size(text, "page size")
    if value < 4096 or value > (1 << 30) or value & (value - 1):
        raise InputError(f"page size {text!r}: expected a power of two from 4K to 1G")
    return value


def detect_format(path: Path, formats: Mapping[str, TraceFormat]) -> TraceFormat:
    """Return the format whose sniffer recognises the content of ``path``."""
    head = _head(path)
    if not head:
        raise InputError(f"{path}: the file is empty; expected a memory trace")
    for fmt in sorted(formats.values(), key=lambda f: (f.priority, f.name)):
        if fmt.sniff is not None and _sniff(fmt, head):
            return fmt
    names = ", ".join(sorted(formats))
    raise InputError(f"{path}: cannot tell the trace format from its content; "
                     f"expected one of {names} (name it with --from)")


def _sniff(fmt: TraceFormat, head: bytes) -> bool:
    try:
        return bool(fmt.sniff(head))
    except Exception as exc:
        raise PluginError(f"the sniffer of trace format {fmt.name!r} raised "
                          f"{type(exc).__name__}: {exc}") from exc


def _head(path: Path) -> bytes:
    try:
        with open_decompressed(path) as stream:
            return stream.read(SNIFF_BYTES)
    except STREAM_ERRORS as exc:
        return _partial_head(path, exc)


def _partial_head(path: Path, exc: BaseException) -> bytes:
    """The head of a truncated compressed file: what decompressed before the damage."""
    head = b""
    try:
        with open_decompressed(path) as stream:
            while len(head) < SNIFF_BYTES:
                piece = stream.read(4096)
                if not piece:
                    break
                head += piece
    except STREAM_ERRORS:
        pass
    if not head:
        raise InputError(f"{path}: corrupt {compression_of(path) or ''} stream: {exc}") from None
    return head


def open_trace(
    path: str | Path,
    pm: pluggy.PluginManager | None = None,
    fmt: str | None = None,
    page_size: int | str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Trace:
    """Open the trace at ``path`` for streaming.

    ``fmt`` names the format (detected from the content when ``None``);
    ``page_size`` sets the page size for formats that carry addresses (4 KiB
    by default; a native trace keeps the one it was written with);
    ``options`` are the format's options (see ``migpolicy trace formats``).
    """
    path = input_file(path, "trace")
    looks_like: list[str] = []
    if pm is None:
        from migpolicy.plugin_manager import get_plugin_manager

        pm = get_plugin_manager()
    formats = trace_formats(pm)
    if fmt is None:
        chosen = detect_format(path, formats)
    elif fmt not in formats:
        raise InputError(f"unknown trace format {fmt!r}; expected one of "
                         f"{', '.join(sorted(formats))}")
    else:
        chosen = formats[fmt]
        head = _head(path)
        if not head:
            raise InputError(f"{path}: the file is empty; expected a memory trace")
        if chosen.sniff is not None and not _sniff(chosen, head):
            looks_like = [f.name for f in sorted(formats.values(), key=lambda f: f.priority)
                          if f.sniff and f is not chosen and _sniff(f, head)]
    opts = _options(chosen, options or {})
    size = parse_page_size(page_size)
    hint = f" (it looks like a {looks_like[0]} trace: check --from)" if looks_like else ""
    if chosen.open is not None:
        if compression_of(path):
            raise InputError(f"{path}: a compressed {chosen.name} trace; decompress it first "
                             f"(the format needs random access){hint}")
        try:
            trace = chosen.open(path, opts)
        except InputError as exc:
            raise InputError(f"{exc}{hint}") from None
        if size is not None and size != trace.meta.page_size:
            raise InputError(f"{path}: a {chosen.name} trace with {trace.meta.page_size}-byte "
                             f"pages cannot be read with --page-size {size}")
        return trace
    streamed = StreamedTrace(path, chosen, size or DEFAULT_PAGE_SIZE, opts)
    streamed.hint = hint
    return streamed


def _options(fmt: TraceFormat | TraceGenerator, given: Mapping[str, Any]) -> dict[str, Any]:
    known = {o.name: o for o in fmt.parameters}
    unknown = sorted(set(given) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        kind = "format" if isinstance(fmt, TraceFormat) else "generator"
        raise InputError(f"trace {kind} {fmt.name!r} has no option {unknown[0]!r}; "
                         f"its options: {listed}")
    return {name: _coerce_option(o.default, given.get(name, o.default), name)
            for name, o in known.items()}


def _coerce_option(default: Any, value: Any, name: str) -> Any:
    """Convert ``value`` (often a command-line string) to the type of ``default``."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            flag = value.strip().lower()
            if flag not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(value)
            return flag in {"1", "true", "yes", "on"}
        return type(default)(value)
    except ValueError:
        raise InputError(f"option {name}={value!r}: expected a "
                         f"{type(default).__name__}") from None


class _DensifiedTrace:
    """Raw chunks (page numbers) from :meth:`_raw`, handed out with dense pages."""

    name: str
    meta: TraceMeta

    def __init__(self) -> None:
        self._pages = PageTable()

    @property
    def page_table(self) -> np.ndarray:
        """Address of each dense page index seen so far (all of them once read to the end)."""
        return self._pages.numbers() * self.meta.page_size

    @property
    def page_numbers(self) -> np.ndarray:
        """Page number (address // page size) of each dense page index seen so far."""
        return self._pages.numbers()

    @property
    def first_touch(self) -> None:
        """``None``: dense indices are given in first-touch order."""
        return None

    def _raw(self, hints: dict[str, Any]) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def chunks(self, events_per_chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield chunks with dense pages; at the end ``meta`` holds the trace's totals."""
        self._pages = PageTable()
        events = 0
        accesses = 0.0
        first = last = None
        hints: dict[str, Any] = {}
        for raw in self._raw(hints):
            if raw.dtype != EVENT_DTYPE:
                raise PluginError(f"{self.name} yielded dtype {raw.dtype}; expected EVENT_DTYPE")
            if not len(raw):
                continue
            if raw["page"].min() < 0:
                raise InputError(f"{self.name}: event {events} has a negative address")
            if first is None:
                self.meta = dataclasses.replace(self.meta, clock=hints.get("clock", "ns"),
                                                epoch_ns=hints.get("epoch_ns"))
                first = int(raw["t_ns"][0])
            out = raw  # handed over by the reader: densified in place
            out["page"] = self._pages.densify(raw["page"])
            last = int(out["t_ns"][-1])
            events += len(out)
            accesses += float(out["weight"].sum())
            for start in range(0, len(out), events_per_chunk):
                yield out[start:start + events_per_chunk]
        if events == 0:
            raise InputError(f"{self.name}: the trace holds no memory accesses")
        self.meta = dataclasses.replace(
            self.meta, events=events, accesses=accesses, distinct_pages=len(self._pages),
            t_first_ns=first, t_last_ns=last, clock=hints.get("clock", "ns"),
            epoch_ns=hints.get("epoch_ns"))


class StreamedTrace(_DensifiedTrace):
    """A trace file read by a format's ``read`` callable; pages densified on the fly."""

    def __init__(self, path: Path, fmt: TraceFormat, page_size: int,
                 options: Mapping[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.name = str(path)
        self.format = fmt
        self.options = dict(options)
        self.meta = TraceMeta(page_size=page_size, source_format=fmt.name)
        #: Appended to read errors when another format recognised the content.
        self.hint = ""

    def _raw(self, hints: dict[str, Any]) -> Iterator[np.ndarray]:
        from migpolicy.traces.events import TraceSource

        try:
            with open_decompressed(self.path) as stream:
                source = TraceSource(str(self.path), stream, self.meta.page_size, self.options,
                                     hints)
                yield from self.format.read(source)
        except ValueError as exc:
            raise InputError(f"{self.path}: {exc}{self.hint}") from None
        except STREAM_ERRORS as exc:
            kind = compression_of(self.path)
            what = f"{kind} stream" if kind else "file"
            raise InputError(f"{self.path}: corrupt or truncated {what}: {exc}") from None


class GeneratedTrace(_DensifiedTrace):
    """A synthetic trace from a :class:`TraceGenerator`, streamed like a file."""

    def __init__(self, generator: TraceGenerator, events: int, pages: int, seed: int,
                 options: Mapping[str, Any], page_size: int = DEFAULT_PAGE_SIZE) -> None:
        super().__init__()
        self.name = f"generator {generator.name}"
        self.generator = generator
        self.args = (events, pages, seed, dict(options))
        self.meta = TraceMeta(page_size=page_size, source_format=f"gen:{generator.name}")

    def _raw(self, hints: dict[str, Any]) -> Iterator[np.ndarray]:
        try:
            yield from self.generator.generate(*self.args)
        except ValueError as exc:
            raise InputError(f"{self.name}: {exc}") from None


def generated_trace(generator: TraceGenerator, events: int, pages: int, seed: int,
                    options: Mapping[str, Any], page_size: int | str | None = None) -> Trace:
    """Return the trace ``generator`` makes from these arguments (options checked)."""
    opts = _options(generator, options)
    return GeneratedTrace(generator, events, pages, seed, opts,
                          parse_page_size(page_size) or DEFAULT_PAGE_SIZE)
