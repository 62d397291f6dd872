"""The migpolicy hook contract: every hook a plugin may implement, in pipeline order.

A migration moves folios between NUMA nodes in five stages; each is a hook, so
a plugin can replace the kernel's behaviour (or price a new engine) for one
stage without touching the others::

    folios ──isolate──▶ isolated folios ──batch──▶ BatchPlan
           ──copy (per engine)──▶ ──remap──▶ ──account──▶ charges per tenant

1. ``migpolicy_isolate`` prices taking each folio off the LRU and unmapping it,
   and decides which folios fail (pinned) or need retries (busy).
2. ``migpolicy_batch`` groups the isolated folios into copy batches (the kernel
   batches at most 512), picks an engine and worker count per batch, and prices
   the per-batch overhead (one batched TLB flush).
3. ``migpolicy_copy`` is called once per engine with that engine's batches;
   the plugin owning the engine prices (and may perform) the copy.
4. ``migpolicy_remap`` prices installing the new mappings and freeing the source.
5. ``migpolicy_account`` decides who pays: which tenant (cgroup), the initiating
   task or kernel threads.

Stage hooks are ``firstresult``: the first implementation that returns a value
wins, so a plugin overrides a built-in by returning a result (built-ins are
registered ``trylast``) and declines by returning ``None``. Hooks are always
called with keyword arguments; an implementation may accept any subset of them,
so new arguments never break old plugins.

Around them: the placement-policy hook (which pages to move each epoch), the
registration hooks (copy engines, parameters, hardware profiles, trace
formats and generators) and the tuning hook (search space).

Units everywhere: bytes, seconds, NUMA node ids; ``hw`` is a
:class:`migpolicy.hardware.profile.Profile`, ``params`` a ``dict`` of resolved
policy parameters (see :mod:`migpolicy.params`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

if TYPE_CHECKING:
    from migpolicy.engines import CopyEngine
    from migpolicy.folios import BatchPlan
    from migpolicy.hardware.profile import Profile
    from migpolicy.params import Parameter
    from migpolicy.pipeline import Accounting, IsolateResult
    from migpolicy.traces.events import TraceFormat, TraceGenerator

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("migpolicy")
hookimpl = pluggy.HookimplMarker("migpolicy")


# -- registration ----------------------------------------------------------------


@hookspec
def migpolicy_copy_engines() -> Sequence[CopyEngine]:
    """Declare the copy engines this plugin provides.

    :returns: :class:`migpolicy.engines.CopyEngine` descriptors (name, summary,
        ``available()`` check for real execution, optional executor).

    Called once when the plugin manager is built; ``migpolicy plugins`` and
    ``--engine`` validation use the union of all answers. An engine named here
    must be priced by the same plugin's :func:`migpolicy_copy`.
    """


@hookspec
def migpolicy_parameters() -> Sequence[Parameter]:
    """Declare the policy parameters this plugin reads, with defaults and ranges.

    :returns: :class:`migpolicy.params.Parameter` objects, names prefixed by the
        plugin's area (``mt.threads``, ``dma.channels``, ``auto.dma_min_folio``).

    Called when parameters are resolved: an unknown ``--param`` key is an error,
    and the tunable ones form the autotuner's default search space.
    """


@hookspec
def migpolicy_hardware_profiles() -> Sequence[str]:
    """Register hardware profile files.

    :returns: paths of profile YAML files; ``migpolicy hw list`` shows them and
        ``--hw NAME`` finds them by their ``name`` key.

    Called when profiles are listed or looked up by name.
    """


@hookspec
def migpolicy_trace_formats() -> Sequence[TraceFormat]:
    """Declare the trace formats this plugin can read.

    :returns: :class:`migpolicy.traces.events.TraceFormat` descriptors (name,
        summary, a content sniffer, a ``read`` callable yielding bounded chunks
        of ``EVENT_DTYPE`` with page numbers, options).

    Called when a trace is opened or listed; ``--from`` validation and format
    detection from the file's content use the union of all answers.
    """


@hookspec
def migpolicy_trace_generators() -> Sequence[TraceGenerator]:
    """Declare the synthetic trace generators this plugin provides.

    :returns: :class:`migpolicy.traces.events.TraceGenerator` descriptors (name,
        summary, a ``generate`` callable deterministic by seed, options).

    Called when ``migpolicy trace gen`` looks a generator up or lists them; the
    union of all answers is offered.
    """


# -- placement policy --------------------------------------------------------------


@hookspec(firstresult=True)
def migpolicy_select_migrations(
    window: np.ndarray, state: Any, params: dict[str, Any]
) -> np.ndarray | None:
    """Decide which pages to promote or demote at the end of one epoch.

    :param window: per-page access counts of the epoch just closed (structured
        array with at least ``page``, ``accesses``, ``node``, ``tenant``).
    :param state: the replay's placement state (page → node, node capacities);
        the policy must not move a page into a full node.
    :param params: resolved policy parameters.
    :returns: migration requests as a folio array (``FOLIO_DTYPE``), or ``None``
        to let the next policy decide.

    firstresult. Called by the replay loop once per epoch; its answer enters the
    stage pipeline below.
    """


# -- stage pipeline ------------------------------------------------------------------


@hookspec(firstresult=True)
def migpolicy_isolate(folios: np.ndarray, hw: Profile, params: dict[str, Any]) -> IsolateResult:
    """Price isolating and unmapping every folio, and decide failures and retries.

    :param folios: the requested folios (``FOLIO_DTYPE``).
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters.
    :returns: an :class:`migpolicy.pipeline.IsolateResult`: one cost row per
        folio (``COST_DTYPE``) and a mask of the folios that were isolated
        (pinned folios fail; busy ones are retried and may succeed).

    firstresult; the kernel default is ``trylast``. Called first, once per
    pipeline run, with all requested folios.
    """


@hookspec(firstresult=True)
def migpolicy_batch(folios: np.ndarray, hw: Profile, params: dict[str, Any]) -> BatchPlan:
    """Split the isolated folios into copy batches and choose an engine for each.

    :param folios: the folios that were isolated (``FOLIO_DTYPE``).
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters (``engine``, ``batch.max_folios``, ...).
    :returns: a :class:`migpolicy.folios.BatchPlan`, including the batch stage's
        own per-batch cost (set-up, one batched TLB flush per batch).

    firstresult; the kernel default (fixed engine, at most 512 folios per batch)
    is ``trylast``, the ``auto`` selector answers when ``engine`` is ``auto``.
    Called once per pipeline run, after isolate.
    """


@hookspec(firstresult=True)
def migpolicy_copy(
    batches: BatchPlan, engine: str, hw: Profile, params: dict[str, Any]
) -> np.ndarray | None:
    """Price (and optionally perform) copying the data of the batches given.

    :param batches: the batches assigned to ``engine`` (a :class:`BatchPlan`
        holding only those batches; ``batches.workers`` is the thread or
        channel count per batch).
    :param engine: the engine name the batch stage chose.
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters.
    :returns: one cost row per batch (``COST_DTYPE``), or ``None`` when this
        plugin does not own ``engine``.

    firstresult: exactly one plugin claims each engine. Called once per engine
    used, after batch.
    """


@hookspec(firstresult=True)
def migpolicy_remap(batches: BatchPlan, hw: Profile, params: dict[str, Any]) -> np.ndarray:
    """Price restoring the page-table entries and freeing the source folios.

    :param batches: the whole batch plan.
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters.
    :returns: one cost row per batch (``COST_DTYPE``); the cost grows with the
        folio's page-table entries and its mapcount.

    firstresult; the kernel default is ``trylast``. Called after all copies.
    """


@hookspec(firstresult=True)
def migpolicy_account(
    owned: Mapping[int, Any], initiator: int, params: dict[str, Any]
) -> Accounting:
    """Attribute the migration's wall, CPU and engine time to tenants.

    :param owned: the run's costs split by the tenant owning the folios,
        proportionally to their bytes (tenant id → :class:`CostTotals`).
    :param initiator: tenant of the task that started the migration (``-1``
        for a kernel thread such as kswapd or a promotion daemon).
    :param params: resolved policy parameters (``account.policy``).
    :returns: an :class:`migpolicy.pipeline.Accounting`: per payer (tenant id as a
        string, or ``kthread``) ``cpu_s``, ``wall_s`` and ``engine_s``.

    firstresult: the built-in policies each answer only for their own
    ``account.policy`` value. Called last.
    """


# -- tuning -------------------------------------------------------------------------


@hookspec
def migpolicy_search_space(trial: Any, hw: Profile) -> dict[str, Any]:
    """Suggest values for this plugin's tunable parameters.

    :param trial: an ``optuna.Trial``.
    :param hw: the hardware profile the study tunes for (bounds such as the
        number of cores or DMA channels come from it).
    :returns: parameter name → suggested value.

    Called once per trial; the study's search space is the union of all
    answers. Built-ins derive theirs from their :func:`migpolicy_parameters`.
    """
