"""Trace replay on tiered memory: a trace, a placement policy, a priced verdict.

:func:`replay` streams a trace in epochs through the placement policies of a
:class:`~migpolicy.context.Context`, prices their migrations through the stage
pipeline in windows, and returns a :class:`ReplayResult`: fast-tier hit
ratio, promotions and demotions, application time (accesses, migration
stalls, policy overhead, contention), migration costs per stage, engine and
tenant, and the offline bounds. See ``docs/replay.md`` for the model.
"""

from __future__ import annotations

from migpolicy.replay.epochs import PageIds, page_ids
from migpolicy.replay.policyfile import DEFAULT_POLICY, load_policy, policy_spec
from migpolicy.replay.run import (
    DEFAULT_EPOCH_NS,
    SAMPLED_FORMATS,
    Checkpoint,
    ReplayOptions,
    ReplayResult,
    replay,
    replay_many,
)
from migpolicy.replay.tiers import INITIAL_PLACEMENTS, Tiers, parse_fast

__all__ = [
    "DEFAULT_EPOCH_NS",
    "DEFAULT_POLICY",
    "INITIAL_PLACEMENTS",
    "SAMPLED_FORMATS",
    "Checkpoint",
    "PageIds",
    "ReplayOptions",
    "ReplayResult",
    "Tiers",
    "load_policy",
    "page_ids",
    "parse_fast",
    "policy_spec",
    "replay",
    "replay_many",
]
