"""The native Parquet format, registered like any other format (see :mod:`.native`).

pyarrow is imported only when a native trace is opened, so loading the
plugin costs nothing to commands that never read a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import TraceFormat

#: Every Parquet file starts (and ends) with these bytes.
MAGIC = b"PAR1"


def _open(path: Path, options: dict[str, Any] | None = None) -> Any:
    from migpolicy.traces.native import NativeTrace

    return NativeTrace(path)


NATIVE = TraceFormat(
    name="native",
    summary="migpolicy's columnar trace: Parquet (LZ4), dense pages and a page table",
    sniff=lambda head: head.startswith(MAGIC),
    open=_open,
    priority=0,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [NATIVE]
