"""Every type a plugin sees, in one module: a plugin imports this and nothing else of migpolicy.

The hooks themselves are specified in :mod:`migpolicy.hookspecs`; their
arguments and answers are the types here:

* data: :data:`FOLIO_DTYPE` (one row per folio: size, page, epoch, nodes,
  mapcount, tenant, flags, reason), :data:`REQUEST_DTYPE` (a placement
  policy's page-level request), :data:`COST_DTYPE` (one cost row per folio or
  batch), :data:`RESULT_DTYPE` (per folio: moved or failed, retries, when it
  completed), :class:`BatchPlan`, :class:`Reason`;
* stage answers: :class:`IsolateResult`, :data:`Accounting`, and the
  :data:`Quote` a batch plugin may call to price engines;
* kernel settings: :class:`KernelSetting` and :class:`NoKernelEquivalent`;
* registrations: :class:`CopyEngine`, :class:`Parameter`,
  :class:`PlacementPolicyInfo` with :class:`PlacementPolicy`,
  :class:`Epoch` and :class:`PlacementView`;
* traces: :data:`EVENT_DTYPE` (one row per trace event), the ``OP_*`` codes,
  :class:`TraceFormat`, :class:`TraceGenerator`, :class:`TraceMeta`,
  :class:`TraceOption`, :class:`TraceSource` and :func:`empty_events`;
* helpers every stage plugin needs: :func:`zero_costs`, :func:`cost_rows`,
  :func:`cost_columns` (per-folio costs by field, :class:`CostColumns`),
  :func:`page_table_entries`, :func:`consecutive_batches`, and
  :data:`hookimpl` to mark implementations.
"""

from __future__ import annotations

from migpolicy.answers import Accounting, IsolateResult, Quote
from migpolicy.costs import COST_DTYPE, CostColumns, CostTotals, cost_columns, cost_rows, zero_costs
from migpolicy.engines import CopyEngine, Executor
from migpolicy.errors import ConfigError, InputError, PluginError
from migpolicy.folios import (
    ASYNC_REASONS,
    BUSY,
    FAILED,
    FOLIO_DTYPE,
    MOVED,
    PINNED,
    PMD_MAPPED,
    REQUEST_DTYPE,
    RESULT_DTYPE,
    BatchPlan,
    Reason,
    consecutive_batches,
    make_folios,
    page_table_entries,
)
from migpolicy.hardware.profile import Profile
from migpolicy.hookspecs import hookimpl
from migpolicy.kernel_settings import KernelSetting, NoKernelEquivalent
from migpolicy.params import Parameter, worker_parameter
from migpolicy.placement import (
    Epoch,
    PlacementPolicy,
    PlacementPolicyInfo,
    PlacementView,
    empty_requests,
)
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
    empty_events,
)

__all__ = [
    "ASYNC_REASONS",
    "BUSY",
    "COST_DTYPE",
    "EVENT_DTYPE",
    "FAILED",
    "FOLIO_DTYPE",
    "MOVED",
    "OP_MODIFY",
    "OP_NAMES",
    "OP_READ",
    "OP_UNKNOWN",
    "OP_WRITE",
    "PINNED",
    "PMD_MAPPED",
    "REQUEST_DTYPE",
    "RESULT_DTYPE",
    "Accounting",
    "BatchPlan",
    "ConfigError",
    "CopyEngine",
    "CostColumns",
    "CostTotals",
    "Epoch",
    "Executor",
    "InputError",
    "IsolateResult",
    "KernelSetting",
    "NoKernelEquivalent",
    "Parameter",
    "PlacementPolicy",
    "PlacementPolicyInfo",
    "PlacementView",
    "PluginError",
    "Profile",
    "Quote",
    "Reason",
    "TraceFormat",
    "TraceGenerator",
    "TraceMeta",
    "TraceOption",
    "TraceSource",
    "consecutive_batches",
    "cost_columns",
    "cost_rows",
    "empty_events",
    "empty_requests",
    "hookimpl",
    "make_folios",
    "page_table_entries",
    "worker_parameter",
    "zero_costs",
]
