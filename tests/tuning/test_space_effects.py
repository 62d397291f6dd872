"""Meta-test: every declared tunable parameter is in the search space, and each one matters.

A parameter in the space that changes no priced result wastes the tuner's
trials; a tunable parameter missing from the space is never searched. Each
parameter is priced at two values of its distribution (the bounds, or two
choices) under its own conditions, over a few migrations; some figure must
differ. Parameters of placement policies act through a replay, so each is
also replayed on a small generated trace whose hot set moves.
"""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution

from migpolicy.context import build_context
from migpolicy.folios import Reason, make_folios
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import declared_parameters
from migpolicy.replay import ReplayOptions, replay
from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native
from migpolicy.tuning.space import build_space

#: Profiles whose spaces are checked: two sockets with DMA, and a CPU + GPU node pair.
PROFILES = ("zen3-epyc-ptdma", "gh200")
#: (folio size, folio count, reason) of the migrations each parameter is priced on.
MIGRATIONS = ((4096, 2048, Reason.SYSCALL), (64 << 10, 512, Reason.SYSCALL),
              (2 << 20, 64, Reason.SYSCALL), (4096, 2048, Reason.DEMOTION),
              (2 << 20, 64, Reason.DEMOTION))


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory):
    """300,000 events 250 us apart (75 s) over 256 pages of 2 MiB, hot set moving 4 times.

    Dense enough for DAMON's 5 ms samples to see the hot pages, long enough for
    NUMA balancing's 60 s threshold adjustment, pages big enough for MB/s
    limits to bind.
    """
    pm = get_plugin_manager(entry_points=False)
    path = tmp_path_factory.mktemp("space") / "phases.mpt"
    made = generated_trace(trace_generators(pm)["phases"], 300_000, 256, 3,
                           {"interval_ns": 250_000}, page_size="2M")
    with open(path, "wb") as handle:
        write_native(made, handle)
    return open_trace(path, pm)


def _replayed(pm, trace, params: dict) -> tuple:
    """A replay's figures; a promotion policy replays beside kswapd-style demotion."""
    given = {"placement.demotion": "watermark", **params} if "placement" in params else params
    run = build_context(pm=pm, hw="dram-cxl", params=given)
    result = replay(trace, run, ReplayOptions(epoch_ns=2_000_000_000))
    return (result.app_time_s, result["promoted_pages"], result["demoted_pages"])


def _figures(pm, hw_name: str, params: dict, trace=None) -> list:
    run = build_context(pm=pm, hw=hw_name, params=params)
    out: list = [_replayed(pm, trace, params)] if trace is not None else []
    for size, count, reason in MIGRATIONS:
        folios = make_folios(size, count, pmd_size=run.hw.pmd_size, reason=reason,
                             dst=1 if 1 in run.hw.nodes else 0)
        report = run.price(folios)
        out.append((report.total_s, sum(s.cpu_s for s in report.stages.values())))
    return out


def _two_values(dist) -> tuple:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0], dist.choices[-1]
    return dist.low, dist.high


@pytest.mark.parametrize("hw_name", PROFILES)
def test_every_tunable_parameter_is_in_the_space(pm, hw_name):
    run = build_context(pm=pm, hw=hw_name)
    space = build_space(pm, run.hw)
    tunable = {p.name for p in declared_parameters(pm) if p.tunable}
    missing = {name for name in tunable if name not in space and name not in space.fixed}
    assert not missing


@pytest.mark.parametrize("hw_name", PROFILES)
def test_every_parameter_in_the_space_changes_a_result(pm, hw_name, small_trace):
    run = build_context(pm=pm, hw=hw_name)
    space = build_space(pm, run.hw)
    inert = []
    for name, dist in space.distributions.items():
        when = space.parameters[name].when
        conditions = [{}] if not when else [
            {key: value} for key, allowed in when.items() for value in allowed]
        changed = False
        placed = name.startswith("placement") or any(k.startswith("placement") for k in when)
        trace = small_trace if placed else None
        for condition in conditions:
            low, high = _two_values(dist)
            if _figures(pm, hw_name, {**condition, name: low}, trace) != _figures(
                    pm, hw_name, {**condition, name: high}, trace):
                changed = True
                break
        if not changed:
            inert.append(name)
    assert not inert, f"on {hw_name}, parameters {inert} change no priced result"
