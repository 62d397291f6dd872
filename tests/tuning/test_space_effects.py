"""Meta-test: every declared tunable parameter is in the search space, and each one matters.

A parameter in the space that changes no priced result wastes the tuner's
trials; a tunable parameter missing from the space is never searched. Each
parameter is priced at two values of its distribution (the bounds, or two
choices) under its own conditions, over a few migrations; some figure must
differ.
"""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution

from migpolicy.context import build_context
from migpolicy.folios import Reason, make_folios
from migpolicy.registries import declared_parameters
from migpolicy.tuning.space import build_space

#: Profiles whose spaces are checked: two sockets with DMA, and a CPU + GPU node pair.
PROFILES = ("zen3-epyc-ptdma", "gh200")
#: (folio size, folio count, reason) of the migrations each parameter is priced on.
MIGRATIONS = ((4096, 2048, Reason.SYSCALL), (64 << 10, 512, Reason.SYSCALL),
              (2 << 20, 64, Reason.SYSCALL), (4096, 2048, Reason.DEMOTION),
              (2 << 20, 64, Reason.DEMOTION))


def _figures(pm, hw_name: str, params: dict) -> list[tuple[float, float]]:
    run = build_context(pm=pm, hw=hw_name, params=params)
    out = []
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
def test_every_parameter_in_the_space_changes_a_result(pm, hw_name):
    run = build_context(pm=pm, hw=hw_name)
    space = build_space(pm, run.hw)
    inert = []
    for name, dist in space.distributions.items():
        when = space.parameters[name].when
        conditions = [{}] if not when else [
            {key: value} for key, allowed in when.items() for value in allowed]
        changed = False
        for condition in conditions:
            low, high = _two_values(dist)
            if _figures(pm, hw_name, {**condition, name: low}) != _figures(
                    pm, hw_name, {**condition, name: high}):
                changed = True
                break
        if not changed:
            inert.append(name)
    assert not inert, f"on {hw_name}, parameters {inert} change no priced result"
