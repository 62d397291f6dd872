"""The replay loop: one pass over a trace drives one or several policy sets.

:func:`replay` is what ``migpolicy replay`` and the tuner call: a trace, a
:class:`~migpolicy.context.Context` (profile, parameters, plugins) and
:class:`ReplayOptions`, and back comes a :class:`ReplayResult` with every
figure the command prints. :func:`replay_many` replays several contexts on one
pass over the trace (``--compare``): the epochs are counted once, and each
policy set keeps its own placement. ``max_events`` replays a prefix;
``checkpoints`` report each policy set's figures so far at evenly spaced
points of the trace's time (the tuner's early stopping: a candidate can be
stopped after a quarter of the trace without replaying the rest). The trace
object can be reused for many replays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from migpolicy.context import Context
from migpolicy.costs import CostTotals
from migpolicy.errors import InputError
from migpolicy.pipeline import STAGES
from migpolicy.placement import Placement
from migpolicy.replay.ahead import epochs_ahead, worth_a_thread
from migpolicy.replay.bounds import Bounds
from migpolicy.replay.epochs import SNAPSHOT, EpochStream, PageIds, page_ids
from migpolicy.replay.lane import Lane
from migpolicy.replay.tiers import Tiers, parse_fast
from migpolicy.traces import Trace
from migpolicy.units import format_size

__all__ = ["DEFAULT_EPOCH_NS", "SAMPLED_FORMATS", "Checkpoint", "ReplayOptions", "ReplayResult",
           "replay", "replay_many"]

#: Epoch when the trace has no natural one: 1 ms (a million records on an untimed trace).
DEFAULT_EPOCH_NS = 1_000_000
#: Formats whose events are samples, not every access.
SAMPLED_FORMATS = ("damo", "damon-perf", "perf")


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: fast-tier size, epoch, initial placement, window, prefix, seed.

    ``fast`` is a size (bytes or ``64M``), a percentage of the footprint
    (``25%``) or a fraction (0.25). ``epoch_ns`` is the epoch's length (on an
    untimed trace: records), 0 for one epoch per snapshot, ``None`` for the
    default: per snapshot on a trace with a natural epoch (DAMON), else 1 ms.
    ``scale`` multiplies access weights (accesses per sample of a sampled
    trace). ``window_epochs`` epochs are priced together. ``ids`` (from
    :func:`page_ids`) lets many replays of one trace share the page numbering,
    which for a non-native trace costs a pass over it. With ``checkpoints``
    = k > 1, ``on_checkpoint`` is called k − 1 times, after the epochs that
    end 1/k, 2/k ... of the trace's time span, with the fraction done and one
    :class:`Checkpoint` per policy set; it may raise to stop the replay.
    ``bounds`` off skips the offline bounds and the access time of never
    migrating (``bound``, ``baseline_app_time_s`` and ``speedup_vs_none`` are
    then ``None``): a tuner reads only each policy's own figures, and those
    two cost about a sixth of a replay. ``ahead`` counts the epochs in a
    second thread (:mod:`migpolicy.replay.ahead`; same figures); ``None``
    does so for traces of 4 M events or more when the process may use more
    than one CPU.
    """

    fast: str | int | float = "25%"
    epoch_ns: int | None = None
    initial: str = "first-touch"
    window_epochs: int = 1024
    max_events: int | None = None
    seed: int = 0
    scale: float = 1.0
    on_chunk: Callable[[np.ndarray], None] | None = None
    checkpoints: int = 0
    on_checkpoint: Callable[[float, list[Checkpoint]], None] | None = None
    #: The trace's page ids from :func:`page_ids`, to skip computing them on every call.
    ids: PageIds | None = None
    bounds: bool = True
    ahead: bool | None = None


@dataclass(frozen=True)
class Checkpoint:
    """One policy set's figures so far, at a checkpoint (every migration so far priced)."""

    app_time_s: float
    migration_cpu_s: float


@dataclass
class ReplayResult:
    """Every figure of one policy set's replay; :meth:`as_dict` is the ``--json`` object."""

    data: dict[str, Any]
    #: The page → node map at the end of the replay (not part of the JSON).
    placement: Placement | None = None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def app_time_s(self) -> float:
        """Modelled application time: accesses, stalls, policy overhead, contention."""
        return self.data["app_time_s"]

    def as_dict(self) -> dict[str, Any]:
        """The JSON object (plain types only)."""
        return self.data


def replay(trace: Trace, context: Context, options: ReplayOptions = ReplayOptions()
           ) -> ReplayResult:
    """Replay ``trace`` under the policies and profile of ``context``."""
    return replay_many(trace, [context], options)[0]


def replay_many(trace: Trace, contexts: Sequence[Context],
                options: ReplayOptions = ReplayOptions()) -> list[ReplayResult]:
    """Replay ``trace`` once, driving every context's policies side by side."""
    if not contexts:
        raise InputError("nothing to replay: no policy given")
    hw = contexts[0].hw
    if any(c.hw is not hw and c.hw.name != hw.name for c in contexts):
        raise InputError("policies compared on one pass must share one hardware profile")
    ids = options.ids if options.ids is not None else page_ids(trace)
    meta = trace.meta
    page_bytes = int(meta.page_size)
    footprint = ids.count * page_bytes
    fast_bytes = parse_fast(options.fast, footprint)
    fast_bytes -= fast_bytes % page_bytes
    tiers = Tiers.of(hw, fast_bytes, page_bytes)
    epoch_ns = options.epoch_ns
    if epoch_ns is None:
        epoch_ns = SNAPSHOT if meta.epoch_ns else DEFAULT_EPOCH_NS
    tenant_of = np.zeros(ids.count, dtype=np.int32)
    lanes = [Lane(c, tiers, tiers.placement(ids.count, ids.first_touch, options.initial),
                  tenant_of, seed=options.seed, window_epochs=options.window_epochs)
             for c in contexts]
    bounds = Bounds(tiers, tiers.placement(ids.count, ids.first_touch, options.initial).node_of
                    ) if options.bounds else None
    stream = EpochStream(trace, ids, epoch_ns, scale=options.scale,
                         max_events=options.max_events, on_chunk=options.on_chunk,
                         tenant_of=tenant_of)
    marks = _checkpoint_times(meta, options)
    epochs = 0
    events = meta.events if options.max_events is None else options.max_events
    ahead = options.ahead if options.ahead is not None else worth_a_thread(events)
    accesses = 0.0
    for epoch in (epochs_ahead(stream) if ahead else stream):
        epochs += 1
        total = float(epoch.accesses.sum())
        accesses += total
        if bounds is not None:
            bounds.add(epoch)
        for lane in lanes:
            lane.step(epoch, total)
        while marks and epoch.start_ns + epoch.length_ns >= marks[-1][1]:
            done = marks.pop()[0]
            for lane in lanes:
                lane.flush()
            options.on_checkpoint(done, [Checkpoint(lane.app_time_s, lane.migration_cpu_s)
                                         for lane in lanes])
    for lane in lanes:
        lane.flush()
    baseline_s = None if bounds is None else bounds.never_migrate_s
    common = {
        "trace": getattr(trace, "name", str(getattr(trace, "path", ""))),
        "format": meta.source_format,
        "clock": meta.clock,
        "events": stream.events,
        "accesses": accesses,
        "epochs": epochs,
        "epoch": _epoch_text(epoch_ns, meta.clock),
        "epoch_ns": stream.epoch_ns,
        "pages": ids.count,
        "page_size": page_bytes,
        "footprint_bytes": footprint,
        "hw": hw.name,
        "tiers": {"fast": {"node": tiers.fast, "name": hw.nodes[tiers.fast].name,
                           "bytes": tiers.fast_bytes, "pages": tiers.fast_pages,
                           "load_latency_ns": hw.nodes[tiers.fast]["load_latency_ns"]},
                  "slow": {"node": tiers.slow, "name": hw.nodes[tiers.slow].name,
                           "bytes": tiers.slow_bytes,
                           "load_latency_ns": hw.nodes[tiers.slow]["load_latency_ns"]}},
        "initial": options.initial,
        "baseline_app_time_s": baseline_s,
        "bound": None if bounds is None else _bounds(bounds, accesses),
        "notes": _notes(meta.source_format, options.scale, meta.clock, hw),
        "provenance": _provenance(hw, (tiers.fast, tiers.slow)),
    }
    return [ReplayResult({**common, **_lane_dict(lane, accesses, baseline_s)},
                         placement=lane.placement) for lane in lanes]


def _checkpoint_times(meta, options: ReplayOptions) -> list[tuple[float, float]]:
    """(fraction, trace time) of each checkpoint, the first last (popped in order)."""
    k = options.checkpoints
    if k < 2 or options.on_checkpoint is None or meta.t_first_ns is None or meta.t_last_ns is None:
        return []
    span = meta.t_last_ns - meta.t_first_ns
    return [(i / k, meta.t_first_ns + span * i / k) for i in range(k - 1, 0, -1)]


def _epoch_text(epoch_ns: int, clock: str) -> str:
    if epoch_ns == SNAPSHOT:
        return "one snapshot"
    if clock == "ordinal":
        return f"{epoch_ns:,} records"
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if epoch_ns >= scale and epoch_ns % scale == 0:
            return f"{epoch_ns // scale}{unit}"
    return f"{epoch_ns}ns"


def _bounds(bounds: Bounds, accesses: float) -> dict[str, float]:
    static_hits, static_s = bounds.static()
    return {"static_hit_ratio": static_hits / accesses if accesses else 0.0,
            "static_access_s": static_s,
            "oracle_hit_ratio": bounds.oracle_hits / accesses if accesses else 0.0,
            "oracle_access_s": bounds.oracle_access_s}


def _notes(fmt: str, scale: float, clock: str, hw) -> list[str]:
    notes = ["figures are modelled: access latencies and capacities from profile "
             f"{hw.name}, migration costs from its stage models (see `migpolicy hw show "
             f"{hw.name}`)"]
    if fmt in SAMPLED_FORMATS:
        notes.append(f"{fmt} events are samples: each sample's weight was counted as "
                     f"{scale:g} access(es) (--scale); access time is an estimate")
    if clock == "ordinal":
        notes.append("the trace has no clock: one record is taken as 1 ns of program time, "
                     "so rates (MB/s) and periods (ms) of the policies are per record (assumed)")
    return notes


def _provenance(hw, nodes: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """Where the profile's figures that the replay used came from."""
    prefixes = (*(f"nodes.{n}." for n in nodes), "stages.", "memory.", "engines.")
    return {path: {"value": value.value, "unit": unit, **value.provenance.as_dict()}
            for path, value, unit in hw.values() if path.startswith(prefixes)}


def _lane_dict(lane: Lane, accesses: float, baseline_s: float | None) -> dict[str, Any]:
    params = lane.context.params
    stages = {name: lane.totals.stages.get(name) for name in STAGES}
    migration = {
        "wall_s": sum(s.wall_s for s in stages.values() if s),
        "cpu_s": lane.migration_cpu_s,
        "engine_s": sum(s.engine_s for s in stages.values() if s),
        "sync_wall_s": lane.stall_s,
        "async_cpu_s": lane.async_cpu_s,
        "stages": {name: (s or CostTotals()).as_dict() for name, s in stages.items()},
        "engines": {name: t.as_dict() for name, t in lane.totals.engines.items()},
        "tenants": {str(t): c.as_dict() for t, c in sorted(lane.totals.tenants.items())},
    }
    app = lane.app_time_s
    return {
        "policy": {"placement": params["placement"],
                   "placement.demotion": params["placement.demotion"]},
        "params": dict(params),
        "promoted_pages": lane.promoted,
        "demoted_pages": lane.demoted,
        "failed_pages": lane.failed,
        "migrated_bytes": lane.migrated_bytes,
        "migrated": format_size(lane.migrated_bytes) if lane.migrated_bytes else "0B",
        "fast_hit_ratio": lane.fast_hits / accesses if accesses else 0.0,
        "app_time_s": app,
        "app": {"access_s": lane.access_s, "migration_stall_s": lane.stall_s,
                "policy_overhead_s": lane.policy_stall_s, "policy_cpu_s": lane.policy_cpu_s,
                "contention_s": lane.contention_s, "system_load": lane.load},
        "speedup_vs_none": None if baseline_s is None else baseline_s / app if app else 1.0,
        "migration": migration,
        "timeline": lane.timeline.as_dict(),
    }
