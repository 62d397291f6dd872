"""Memory traces: the native columnar format, readers, generators and streaming access.

Open any trace with :func:`open_trace` and stream it with ``trace.chunks(n)``:
``EVENT_DTYPE`` arrays with dense page indices (first-touch order as a reader
meets them; address order in a native file, which keeps the first-touch order
in ``trace.first_touch``), the page table (dense index → address) in
``trace.page_table``, the totals in ``trace.meta``. Formats and generators are plugins
(``migpolicy_trace_formats``, ``migpolicy_trace_generators``); the built-in
ones are the ``fmt_*`` modules and :mod:`.generators`.
"""

from __future__ import annotations

from migpolicy.traces.events import (
    EVENT_DTYPE,
    OP_MODIFY,
    OP_NAMES,
    OP_READ,
    OP_UNKNOWN,
    OP_WRITE,
    EventColumns,
    TraceFormat,
    TraceGenerator,
    TraceMeta,
    TraceOption,
    TraceSource,
)

#: Names imported on first use: they need pyarrow, which the format plugins
#: (imported with every plugin manager) must not pull into every command.
_LAZY = {
    "write_native": "migpolicy.traces.native",
    "Trace": "migpolicy.traces.trace",
    "generated_trace": "migpolicy.traces.trace",
    "open_trace": "migpolicy.traces.trace",
    "parse_page_size": "migpolicy.traces.trace",
    "trace_columns": "migpolicy.traces.trace",
    "trace_formats": "migpolicy.traces.trace",
    "trace_generators": "migpolicy.traces.trace",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "EVENT_DTYPE",
    "OP_MODIFY",
    "OP_NAMES",
    "OP_READ",
    "OP_UNKNOWN",
    "OP_WRITE",
    "EventColumns",
    "Trace",
    "TraceFormat",
    "TraceGenerator",
    "TraceMeta",
    "TraceOption",
    "TraceSource",
    "generated_trace",
    "open_trace",
    "parse_page_size",
    "trace_columns",
    "trace_formats",
    "trace_generators",
    "write_native",
]
