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

Around them: the registration hooks (copy engines, parameters, hardware
profiles, placement policies, trace formats and generators) and the tuning
hook (narrowing the search space). A plugin imports its types from
:mod:`migpolicy.contract` and nothing else of migpolicy's internals.

Units everywhere: bytes, seconds, NUMA node ids; ``hw`` is a
:class:`migpolicy.hardware.profile.Profile`, ``params`` a mapping of resolved
policy parameters (see :mod:`migpolicy.params`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from migpolicy.contract import (
        Accounting,
        BatchPlan,
        CopyEngine,
        CostTotals,
        IsolateResult,
        KernelSetting,
        NoKernelEquivalent,
        Parameter,
        PlacementPolicyInfo,
        Profile,
        Quote,
        TraceFormat,
        TraceGenerator,
    )

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("migpolicy")
hookimpl = pluggy.HookimplMarker("migpolicy")


# -- registration ----------------------------------------------------------------


@hookspec
def migpolicy_copy_engines() -> Sequence[CopyEngine]:
    """Declare the copy engines this plugin provides.

    :returns: :class:`migpolicy.engines.CopyEngine` descriptors (name, summary,
        ``available()`` check for real execution, optional executor).

    Called when a run context is built; ``migpolicy plugins``, ``--engine``
    validation, the ``auto`` selector and the search space's ``engine`` choices
    use the union of all answers. An engine named here must be priced by the
    same plugin's :func:`migpolicy_copy`.
    """


@hookspec
def migpolicy_parameters() -> Sequence[Parameter]:
    """Declare the policy parameters this plugin reads, with defaults and ranges.

    :returns: :class:`migpolicy.params.Parameter` objects, names prefixed by the
        plugin's area (``mt.placement``, ``auto.cpu_weight``), with ranges,
        hardware-dependent bounds and conditions for the search space.

    Called when parameters are resolved: an unknown ``--param`` key is an error,
    and every tunable one is in the autotuner's search space
    (:func:`migpolicy.tuning.space.build_space`).
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


@hookspec
def migpolicy_placement_policies() -> Sequence[PlacementPolicyInfo]:
    """Declare the placement policies this plugin provides.

    :returns: :class:`migpolicy.contract.PlacementPolicyInfo` descriptors: name,
        summary, role (``promotion`` or ``demotion``), the factory that builds
        one stateful :class:`migpolicy.contract.PlacementPolicy` per replay,
        and the parameters it reads.

    Called when a run context is built; the ``placement`` parameter chooses a
    promotion policy and ``placement.demotion`` a demotion policy among the
    union of all answers, and the search space offers them as choices.
    """


# -- stage pipeline ------------------------------------------------------------------


@hookspec(firstresult=True)
def migpolicy_isolate(
    folios: np.ndarray, hw: Profile, params: Mapping[str, Any]
) -> IsolateResult:
    """Price isolating and unmapping every folio, and decide failures and retries.

    :param folios: the requested folios (``FOLIO_DTYPE``) of every epoch being
        priced, in epoch order; each carries its page, reason and epoch.
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters.
    :returns: an :class:`migpolicy.contract.IsolateResult`: one cost row per
        folio (``COST_DTYPE`` rows, or :func:`~migpolicy.contract.cost_columns`
        standing for them) and a mask of the folios that were isolated
        (pinned folios fail; busy ones are retried and may succeed).

    firstresult; the kernel default is ``trylast``. Called first, once per
    pipeline run, with all requested folios.
    """


@hookspec(firstresult=True)
def migpolicy_batch(
    folios: np.ndarray,
    hw: Profile,
    params: Mapping[str, Any],
    engines: Mapping[str, CopyEngine],
    quote: Quote,
) -> BatchPlan:
    """Split the isolated folios into copy batches and choose an engine for each.

    :param folios: the folios that were isolated (``FOLIO_DTYPE``), in epoch order.
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters (``engine``, ``batch.max_folios``, ...).
    :param engines: every registered copy engine by name.
    :param quote: ``quote(batches, engine)`` prices the copy of some batches on
        one engine (cost rows), so a plugin can choose engines by predicted cost.
    :returns: a :class:`migpolicy.contract.BatchPlan` holding the folios in
        the order given, in batches that never span two epochs, including the
        batch stage's own per-batch cost (set-up, one batched TLB flush).

    firstresult; the kernel default (consecutive batches of at most 512 folios
    on the fixed engine) is ``trylast``; the ``auto`` selector wraps it and
    reassigns engines when ``engine`` is ``auto``. Called once per pipeline
    run, after isolate, with the folios of every epoch being priced.
    """


@hookspec(firstresult=True)
def migpolicy_copy(
    batches: BatchPlan, engine: str, hw: Profile, params: Mapping[str, Any], cache: dict
) -> np.ndarray | None:
    """Price (and optionally perform) copying the data of the batches given.

    :param batches: the batches assigned to ``engine`` (a :class:`BatchPlan`
        holding only those batches; ``batches.workers`` is the thread or
        channel count per batch).
    :param engine: the engine name the batch stage chose.
    :param hw: the hardware profile pricing this run.
    :param params: resolved policy parameters.
    :param cache: a store that lives as long as the run context: load what is
        expensive (a learned model) once, keyed by what it depends on.
    :returns: one cost row per batch (``COST_DTYPE``), or ``None`` when this
        plugin does not own ``engine``.

    firstresult: exactly one plugin claims each engine. Called once per engine
    used, after batch, and whenever a batch plugin asks for a ``quote``.
    """


@hookspec(firstresult=True)
def migpolicy_remap(batches: BatchPlan, hw: Profile, params: Mapping[str, Any]) -> np.ndarray:
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
    owned: Mapping[int, CostTotals], initiator: int, params: Mapping[str, Any]
) -> Accounting:
    """Attribute the migration's wall, CPU and engine time to tenants.

    :param owned: the run's costs split by the tenant owning the folios,
        proportionally to their bytes (tenant id → :class:`CostTotals`).
    :param initiator: tenant of the task that started the migration (``-1``
        for a kernel thread such as kswapd or a promotion daemon).
    :param params: resolved policy parameters (``account.policy``).
    :returns: an :class:`migpolicy.contract.Accounting`: per payer (tenant id as a
        string, or ``kthread``) ``cpu_s``, ``wall_s`` and ``engine_s``.

    firstresult: the built-in policies each answer only for their own
    ``account.policy`` value. Called last.
    """


# -- tuning -------------------------------------------------------------------------


@hookspec
def migpolicy_search_space(
    space: Mapping[str, BaseDistribution], hw: Profile
) -> Mapping[str, BaseDistribution] | None:
    """Narrow the search space derived from the declared parameters.

    :param space: parameter name → Optuna distribution, as derived from every
        tunable :func:`migpolicy_parameters` declaration on ``hw``.
    :param hw: the hardware profile the study tunes for.
    :returns: parameter name → a narrower distribution (a sub-range or a subset
        of the choices), or ``None`` to leave the space as it is.

    Optional: the space exists without it. Called once when the space is
    built, before any trial; widening a range is a plugin error.
    """


@hookspec
def migpolicy_kernel_settings(
    params: Mapping[str, Any], hw: Profile
) -> Sequence[KernelSetting | NoKernelEquivalent] | None:
    """Translate this plugin's parameters into settings of the real kernel mechanisms.

    :param params: resolved policy parameters (a tuned policy's values, defaults
        filled in); a plugin maps only the parameters it declares, and only
        those in effect (its ``when`` conditions hold).
    :param hw: the hardware profile of the machine the settings are for (node
        sizes and ids, for values that need converting).
    :returns: :class:`migpolicy.contract.KernelSetting` objects (a sysctl,
        debugfs or sysfs knob, a field of the DAMOS kdamonds JSON, a copy-offload
        setting of the RFC series, a compile-time constant), each naming the
        parameters it comes from and how a value was converted, and
        :class:`migpolicy.contract.NoKernelEquivalent` objects for parameters
        without one, with the reason; or ``None``.

    Optional: a parameter no plugin maps is listed as having no kernel
    equivalent. Called once by ``migpolicy policy kernel``; the union of all
    answers is printed, and two plugins setting one knob is a plugin error.
    """
