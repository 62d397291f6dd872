"""The replay's placement (page → node map): invariants, request checks, apply and revert.

The checks are compared with an independent oracle: a plain Python walk over
the requests in order that keeps a running byte count per node. Every page is
on exactly one node and no node is over its capacity after any accepted
request; a rejected request changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import PluginError
from migpolicy.folios import FAILED, MOVED, REQUEST_DTYPE, Reason
from migpolicy.hardware.registry import find_profile
from migpolicy.placement import Placement
from migpolicy.placement_kernels import requests_fit
from migpolicy.plugin_manager import get_plugin_manager

KIB, MIB = 1 << 10, 1 << 20
NODES = (0, 1, 2)
PROPERTY = settings(max_examples=150, deadline=None)


def requests_of(pairs: list[tuple[int, int]], reason: Reason = Reason.NUMA_MISPLACED) -> np.ndarray:
    out = np.zeros(len(pairs), dtype=REQUEST_DTYPE)
    if pairs:
        out["page"], out["dst"] = zip(*pairs, strict=True)
    out["reason"] = reason
    return out


def bytes_per_node(node_of: np.ndarray, page_bytes: np.ndarray) -> dict[int, int]:
    """Bytes on each node, counted page by page (independent of Placement's bookkeeping)."""
    used = dict.fromkeys(NODES, 0)
    for node, size in zip(node_of.tolist(), page_bytes.tolist(), strict=True):
        used[node] += size
    return used


def oracle_accepts(node_of: np.ndarray, page_bytes: np.ndarray, capacity: dict[int, int],
                   pairs: list[tuple[int, int]]) -> bool:
    """Whether the requests keep every invariant, walked one request at a time."""
    used = bytes_per_node(node_of, page_bytes)
    seen: set[int] = set()
    for page, dst in pairs:
        if not 0 <= page < len(node_of) or dst not in capacity or page in seen:
            return False
        seen.add(page)
        src = int(node_of[page])
        if src == dst:
            return False
        used[src] -= int(page_bytes[page])
        used[dst] += int(page_bytes[page])
        if used[dst] > capacity[dst]:
            return False
    return True


@st.composite
def placements(draw) -> tuple[Placement, list[tuple[int, int]]]:
    """A valid placement (some nodes nearly full) and arbitrary requests, good or broken."""
    n = draw(st.integers(1, 30))
    sizes = np.array(draw(st.lists(st.sampled_from([4 * KIB, 64 * KIB, 2 * MIB]),
                                   min_size=n, max_size=n)), dtype=np.int64)
    node_of = np.array(draw(st.lists(st.sampled_from(NODES), min_size=n, max_size=n)),
                       dtype=np.int16)
    used = bytes_per_node(node_of, sizes)
    slack = draw(st.lists(st.sampled_from([0, 4 * KIB, 64 * KIB, 2 * MIB, 64 * MIB]),
                          min_size=3, max_size=3))
    capacity = {node: used[node] + extra for node, extra in zip(NODES, slack, strict=True)}
    pairs = draw(st.lists(st.tuples(st.integers(-1, n), st.sampled_from([*NODES, 3])),
                          max_size=12))
    return Placement(node_of=node_of, page_bytes=sizes, capacity=capacity), pairs


def snapshot(p: Placement) -> tuple[list[int], dict[int, int]]:
    return p.node_of.tolist(), dict(p.used)


# -- apply ----------------------------------------------------------------------------------------


@PROPERTY
@given(placements())
def test_apply_accepts_exactly_what_keeps_the_invariants(case) -> None:
    placement, pairs = case
    before_nodes = placement.node_of.copy()
    before = snapshot(placement)
    requests = requests_of(pairs)
    accepted = oracle_accepts(placement.node_of, placement.page_bytes, placement.capacity, pairs)
    if not accepted:
        with pytest.raises(PluginError, match=r"^placement policy "):
            placement.apply(requests)
        assert snapshot(placement) == before  # a rejected request changes nothing
        return
    previous = placement.apply(requests)
    assert previous.tolist() == [int(before_nodes[page]) for page, _ in pairs]
    expected = before_nodes.copy()
    for page, dst in pairs:
        expected[page] = dst
    assert placement.node_of.tolist() == expected.tolist()
    # every page on exactly one node: the bytes per node add up to all the pages
    assert placement.used == bytes_per_node(placement.node_of, placement.page_bytes)
    assert sum(placement.used.values()) == int(placement.page_bytes.sum())
    assert all(placement.used[node] <= placement.capacity[node] for node in NODES)


@PROPERTY
@given(placements())
def test_the_compiled_check_accepts_exactly_what_keeps_the_invariants(case) -> None:
    """The compiled loop that lets good requests through without the numpy checks agrees with
    the oracle both ways (a false "no" would only cost time; a false "yes" would let a broken
    request through)."""
    placement, pairs = case
    requests = requests_of(pairs)
    nodes = np.asarray(sorted(placement.capacity), dtype=np.int64)
    verdict = requests_fit(requests["page"], requests["dst"], placement.node_of,
                           placement.page_bytes, nodes,
                           np.asarray([placement.used[int(n)] for n in nodes]),
                           np.asarray([placement.capacity[int(n)] for n in nodes]))
    assert verdict == oracle_accepts(placement.node_of, placement.page_bytes,
                                     placement.capacity, pairs)


@PROPERTY
@given(placements(), st.data())
def test_revert_puts_back_exactly_the_failed_requests(case, data) -> None:
    placement, pairs = case
    if not oracle_accepts(placement.node_of, placement.page_bytes, placement.capacity, pairs):
        return
    original = placement.node_of.copy()
    requests = requests_of(pairs)
    previous = placement.apply(requests)
    failed = data.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    status = np.where(failed, FAILED, MOVED).astype(np.uint8)
    placement.revert(requests, previous, status)
    for (page, dst), lost in zip(pairs, failed, strict=True):
        assert placement.node_of[page] == (original[page] if lost else dst)
    untouched = np.setdiff1d(np.arange(len(original)), [page for page, _ in pairs])
    assert (placement.node_of[untouched] == original[untouched]).all()
    assert placement.used == bytes_per_node(placement.node_of, placement.page_bytes)
    if all(failed):
        assert placement.node_of.tolist() == original.tolist()


def test_revert_never_leaves_a_node_over_capacity() -> None:
    """Fast node 0 holds one 2 MiB page and has no room for a second."""
    placement = Placement(node_of=np.array([0, 1], dtype=np.int16),
                          page_bytes=np.array([2 * MIB, 2 * MIB]),
                          capacity={0: 2 * MIB, 1: 4 * MIB})
    requests = requests_of([(0, 1), (1, 0)])  # demote page 0 to make room, promote page 1
    previous = placement.apply(requests)
    placement.revert(requests, previous, np.array([FAILED, MOVED], dtype=np.uint8))
    assert placement.used[0] <= placement.capacity[0]


# -- check: each broken request kind --------------------------------------------------------------


def small() -> Placement:
    """Pages 0-2 on the fast node 0 (room for one more 4 KiB page), pages 3-5 on node 1."""
    return Placement(node_of=np.array([0, 0, 0, 1, 1, 1], dtype=np.int16),
                     page_bytes=np.full(6, 4 * KIB, dtype=np.int64),
                     capacity={0: 16 * KIB, 1: 1 * MIB})


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(6, 0)], "requested page 6 of 6 pages"),
        ([(-1, 0)], "of 6 pages"),
        ([(3, 5)], "requested node 5, which has no capacity"),
        ([(3, 0), (3, 0)], "same page twice"),
        ([(1, 0)], "requested page 1 to node 0, where it already is"),
        ([(3, 0), (4, 0)], "fills node 0 to 20480 bytes, past its capacity of 16384"),
        # the room is made too late: a promotion before the demotion it needs
        ([(3, 0), (4, 0), (0, 1)], "fills node 0 to 20480 bytes"),
    ],
)
def test_check_catches_each_broken_request(pairs, message: str) -> None:
    placement = small()
    before = snapshot(placement)
    with pytest.raises(PluginError, match=message):
        placement.check(requests_of(pairs), "placement policy 'broken'")
    with pytest.raises(PluginError, match=r"^placement policy 'broken' "):
        placement.apply(requests_of(pairs), "placement policy 'broken'")
    assert snapshot(placement) == before


def test_demotions_before_promotions_make_room() -> None:
    placement = small()
    placement.apply(requests_of([(0, 1), (3, 0), (4, 0)]))
    assert placement.node_of.tolist() == [1, 0, 0, 0, 0, 1]
    assert placement.used == {0: 16 * KIB, 1: 8 * KIB}


@pytest.mark.parametrize("bad", [np.zeros(2, dtype=[("page", np.int64), ("dst", np.int16)]),
                                 [(3, 0)], None])
def test_check_rejects_anything_but_a_request_array(bad) -> None:
    with pytest.raises(PluginError, match="must return a REQUEST_DTYPE array"):
        small().check(bad)


def test_no_requests_are_fine() -> None:
    placement = small()
    before = snapshot(placement)
    assert len(placement.apply(requests_of([]))) == 0
    assert snapshot(placement) == before


# -- construction and the view --------------------------------------------------------------------


def test_a_placement_must_start_valid() -> None:
    with pytest.raises(ValueError, match="node with a capacity"):
        Placement(node_of=np.array([0, 2], dtype=np.int16), page_bytes=np.array([1, 1]),
                  capacity={0: 10, 1: 10})
    with pytest.raises(ValueError, match="node 0 starts over its capacity"):
        Placement(node_of=np.array([0, 0], dtype=np.int16), page_bytes=np.array([8, 8]),
                  capacity={0: 10, 1: 10})


def test_the_view_is_read_only_and_reports_free_space() -> None:
    placement = small()
    hw = find_profile(get_plugin_manager(entry_points=False), None)
    view = placement.view(fast=(0,), slow=(1,), epoch_ns=10**8, hw=hw)
    assert view.hw is hw and view.epoch_ns == 10**8
    assert (view.free(0), view.free(1)) == (4 * KIB, 1 * MIB - 12 * KIB)
    with pytest.raises(ValueError, match="read-only"):
        view.node_of[0] = 1
    with pytest.raises(ValueError, match="read-only"):
        view.page_bytes[0] = 1
    placement.apply(requests_of([(3, 0)]))
    assert view.free(0) == 4 * KIB  # a snapshot of the space when it was taken
    assert placement.node_of.flags.writeable  # the placement itself stays writable
