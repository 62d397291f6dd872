"""The native Parquet format, registered like any other format (see :mod:`.native`)."""

from __future__ import annotations

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import TraceFormat
from migpolicy.traces.native import MAGIC, open_native

NATIVE = TraceFormat(
    name="native",
    summary="migpolicy's columnar trace: Parquet (LZ4), dense pages and a page table",
    sniff=lambda head: head.startswith(MAGIC),
    open=open_native,
    priority=0,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [NATIVE]
