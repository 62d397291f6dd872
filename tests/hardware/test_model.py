"""The analytic copy-bandwidth model: soft minimum/maximum and how bandwidth scales.

Relations only, never fitted numbers: the profiles are re-fitted as the
published tables are studied, and these properties must hold for any fit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.hardware.model import (
    PLACEMENTS,
    SIDES,
    copy_bandwidth_gbps,
    free_threads,
    soft_max,
    soft_min,
    worker_node,
)
from migpolicy.hardware.registry import find_profile

SHIPPED = ("zen3-epyc-ptdma", "gh200", "dram-cxl", "local")

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
sharpness = st.floats(min_value=0.5, max_value=32)


@pytest.fixture(scope="module")
def profiles():
    from migpolicy.plugin_manager import get_plugin_manager

    pm = get_plugin_manager(entry_points=False)
    return {name: find_profile(pm, name) for name in SHIPPED}


# -- soft minimum and maximum ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(positive, min_size=1, max_size=5), sharpness)
def test_soft_min_is_below_min_and_near_it(caps: list[float], k: float) -> None:
    value = float(soft_min(caps, k))
    assert value <= min(caps) * (1 + 1e-12)
    assert value >= min(caps) * len(caps) ** (-1 / k) * (1 - 1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(positive, min_size=1, max_size=5), sharpness)
def test_soft_max_is_above_max_and_near_it(times: list[float], k: float) -> None:
    value = float(soft_max(times, k))
    assert value >= max(times) * (1 - 1e-12)
    assert value <= max(times) * len(times) ** (1 / k) * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(positive, min_size=2, max_size=4), sharpness)
def test_soft_min_and_max_are_symmetric(values: list[float], k: float) -> None:
    mins = {round(float(soft_min(list(p), k)), 9) for p in itertools.permutations(values)}
    maxs = {round(float(soft_max(list(p), k)), 9) for p in itertools.permutations(values)}
    for group in (mins, maxs):
        spread = max(group) - min(group)
        assert spread <= 1e-9 * max(group) + 1e-9


def test_soft_min_of_one_value_is_that_value() -> None:
    assert float(soft_min([7.0], 4)) == pytest.approx(7.0)
    assert float(soft_max([7.0], 4)) == pytest.approx(7.0)


def test_sharper_soft_min_is_closer_to_min() -> None:
    caps = [10.0, 12.0, 50.0]
    values = [float(soft_min(caps, k)) for k in (1, 2, 4, 8, 32)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(10.0, rel=0.01)


def test_soft_min_and_max_are_vectorised() -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([3.0, 2.0, 1.0])
    out = soft_min([a, b], 4)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(out[2])
    assert (soft_max([a, b], 4) >= np.maximum(a, b)).all()


# -- copy bandwidth -----------------------------------------------------------------------------


def nodes_pairs(profile) -> list[tuple[int, int]]:
    ids = list(profile.nodes)
    return [(s, d) for s in ids for d in ids]


@pytest.mark.parametrize("name", SHIPPED)
def test_bandwidth_is_monotone_in_threads(profiles, name: str) -> None:
    profile = profiles[name]
    threads = np.arange(1, int(profile.p("engines.mt.max_threads")) + 1)
    for (src, dst), placement, side, load in itertools.product(
        nodes_pairs(profile), PLACEMENTS, SIDES, (0.0, 0.5)
    ):
        bw = copy_bandwidth_gbps(profile, threads, src=src, dst=dst, placement=placement,
                                 side=side, load=load)
        assert (bw > 0).all()
        assert (np.diff(bw) >= -1e-9 * bw[1:]).all(), (src, dst, placement, side, load)


@pytest.mark.parametrize("name", SHIPPED)
def test_bandwidth_never_exceeds_a_cap(profiles, name: str) -> None:
    profile = profiles[name]
    threads = np.arange(1, int(profile.p("engines.mt.max_threads")) + 1)
    for src, dst in nodes_pairs(profile):
        bw = copy_bandwidth_gbps(profile, threads, src=src, dst=dst)
        assert (bw <= threads * profile.p("memory.thread_gbps") * (1 + 1e-12)).all()
        if src != dst:
            assert (bw <= profile.p("memory.link_gbps") * (1 + 1e-12)).all()
        else:
            assert (bw <= profile.nodes[src]["bandwidth_gbps"] / 2 * (1 + 1e-12)).all()


@pytest.mark.parametrize("name", SHIPPED)
def test_spread_is_at_least_fill(profiles, name: str) -> None:
    profile = profiles[name]
    threads = np.arange(1, int(profile.p("engines.mt.max_threads")) + 1)
    for src, dst in nodes_pairs(profile):
        spread = copy_bandwidth_gbps(profile, threads, src=src, dst=dst, placement="spread")
        fill = copy_bandwidth_gbps(profile, threads, src=src, dst=dst, placement="fill")
        assert (spread >= fill * (1 - 1e-12)).all()


def test_spread_beats_fill_when_threads_fit_in_one_domain_of_many(profiles) -> None:
    profile = profiles["zen3-epyc-ptdma"]
    node = profile.nodes[0]
    assert node["ccds"] > 1
    per_ccd = int(node["cores_per_ccd"] * node["smt"])
    spread = copy_bandwidth_gbps(profile, per_ccd, src=0, dst=1, placement="spread")
    fill = copy_bandwidth_gbps(profile, per_ccd, src=0, dst=1, placement="fill")
    assert spread > fill


@pytest.mark.parametrize("threads", [1, 4, 16])
def test_pull_applies_the_pull_factor(profiles, threads: int) -> None:
    profile = profiles["zen3-epyc-ptdma"]  # two identical sockets: only the factor differs
    push = copy_bandwidth_gbps(profile, threads, src=0, dst=1, side="push")
    pull = copy_bandwidth_gbps(profile, threads, src=0, dst=1, side="pull")
    assert float(pull) == pytest.approx(float(push) * profile.p("memory.pull_factor"))


def test_pull_to_a_cpu_less_node_runs_on_a_node_with_cores(profiles) -> None:
    profile = profiles["dram-cxl"]
    assert profile.nodes[1].cores == 0
    assert worker_node(profile, 0, 1, "pull").id == 0
    assert worker_node(profile, 1, 0, "push").id == 0
    assert worker_node(profile, 0, 1, "push").id == 0
    push = copy_bandwidth_gbps(profile, 8, src=0, dst=1, side="push")
    pull = copy_bandwidth_gbps(profile, 8, src=0, dst=1, side="pull")
    # both sides run on node 0's cores: pulling costs exactly what pushing does
    assert profile.p("memory.pull_factor") != 1.0
    assert float(pull) == pytest.approx(float(push))


def test_worker_node_follows_the_side(profiles) -> None:
    profile = profiles["zen3-epyc-ptdma"]
    assert worker_node(profile, 0, 1, "push").id == 0
    assert worker_node(profile, 0, 1, "pull").id == 1
    assert worker_node(profile, 1, 0, "push").id == 1


@pytest.mark.parametrize("name", SHIPPED)
def test_load_reduces_usable_threads(profiles, name: str) -> None:
    profile = profiles[name]
    node = profile.cpu_nodes[0]
    all_threads = int(node.cores * node["smt"])
    threads = np.arange(1, int(profile.p("engines.mt.max_threads")) + 1)
    dst = node.id
    idle = copy_bandwidth_gbps(profile, threads, src=node.id, dst=dst)
    for load in (0.25, 0.5, 0.9):
        busy = copy_bandwidth_gbps(profile, threads, src=node.id, dst=dst, load=load)
        assert (busy <= idle * (1 + 1e-12)).all()
        free = free_threads(node, load)
        assert 1 <= free <= all_threads
        # a loaded machine behaves like an idle one with only the free threads
        equivalent = copy_bandwidth_gbps(profile, free, src=node.id, dst=dst)
        assert float(busy[-1]) == pytest.approx(float(equivalent))
        if all_threads > 1:
            full = copy_bandwidth_gbps(profile, all_threads, src=node.id, dst=dst, load=load)
            full_idle = copy_bandwidth_gbps(profile, all_threads, src=node.id, dst=dst)
            assert float(full) <= float(full_idle)


@pytest.mark.parametrize("name", SHIPPED)
def test_free_threads(profiles, name: str) -> None:
    node = profiles[name].cpu_nodes[0]
    assert free_threads(node, 0.0) == node.cores * node["smt"]
    assert free_threads(node, 0.99) >= 1
    loads = [0.0, 0.1, 0.5, 0.9, 0.99]
    values = [free_threads(node, load) for load in loads]
    assert values == sorted(values, reverse=True)


def test_a_cpu_less_node_still_leaves_one_thread(profiles) -> None:
    node = profiles["gh200"].nodes[1]
    assert node.cores == 0
    assert free_threads(node, 0.0) == 1.0
