"""The compiled inner loops against the numpy expressions they replace, to the last bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migpolicy.replay import kernels
from tests.conftest import touched_pages


@st.composite
def _epoch(draw):
    _, pages, node_of = draw(touched_pages(500))
    writes = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 2.5, 1e-3, 7e5])))
    reads = draw(hnp.arrays(np.float64, len(pages), elements=st.sampled_from(
        [0.0, 1.0, 3.0, 0.25, 1e6])))
    return pages, reads + writes, writes, node_of


_LATENCY = (9e-8, 1.1e-7, 2.7e-7, 3.3e-7)  # load and store of the fast node, then the slow


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_access_terms_are_the_numpy_expression(epoch):
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    on_fast = node_of[pages] == 0
    reads = accesses - writes
    load = np.where(on_fast, load_f, load_s)
    store = np.where(on_fast, store_f, store_s)
    got = kernels.access_terms(pages, accesses, writes, node_of, 0, *_LATENCY)
    expected = (reads * load, writes * store, accesses[on_fast])
    assert [a.tobytes() for a in got] == [a.tobytes() for a in expected]


@settings(max_examples=150, deadline=None)
@given(_epoch())
def test_bounds_terms_are_the_numpy_expression(epoch):
    """Totals per page, the oracle's terms with every page fast, and the access terms."""
    pages, accesses, writes, node_of = epoch
    load_f, store_f, load_s, store_s = _LATENCY
    totals = np.ones((len(node_of), 2))
    both, fast_s, loads, stores = kernels.bounds_terms(pages, accesses, writes, totals,
                                                       node_of, 0, *_LATENCY)
    reads = accesses - writes
    expected = np.ones((len(node_of), 2))
    expected[pages, 0] += reads
    expected[pages, 1] += writes
    assert totals.tobytes() == expected.tobytes()
    slow = reads * load_s + writes * store_s
    gain = slow - (reads * load_f + writes * store_f)
    assert both.tobytes() == (reads + writes).tobytes()
    assert fast_s.tobytes() == (slow - gain).tobytes()
    access = kernels.access_terms(pages, accesses, writes, node_of, 0, *_LATENCY)
    assert [loads.tobytes(), stores.tobytes()] == [a.tobytes() for a in access[:2]]
