"""Memory traces: the native columnar format, readers, generators and streaming access.

Open any trace with :func:`open_trace` and stream it with ``trace.chunks(n)``:
``EVENT_DTYPE`` arrays with dense page indices (first-touch order), the page
table (dense index → address) in ``trace.page_table``, the totals in
``trace.meta``. Formats and generators are plugins
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
    TraceFormat,
    TraceGenerator,
    TraceMeta,
    TraceOption,
    TraceSource,
)
from migpolicy.traces.native import write_native
from migpolicy.traces.trace import (
    Trace,
    generated_trace,
    open_trace,
    parse_page_size,
    trace_formats,
    trace_generators,
)

__all__ = [
    "EVENT_DTYPE",
    "OP_MODIFY",
    "OP_NAMES",
    "OP_READ",
    "OP_UNKNOWN",
    "OP_WRITE",
    "Trace",
    "TraceFormat",
    "TraceGenerator",
    "TraceMeta",
    "TraceOption",
    "TraceSource",
    "generated_trace",
    "open_trace",
    "parse_page_size",
    "trace_formats",
    "trace_generators",
    "write_native",
]
