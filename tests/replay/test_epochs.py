"""Cutting chunks into epochs and counting pages, against the plain definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.replay.epochs import EpochStream, PageCounts
from migpolicy.traces.events import OP_READ, OP_WRITE


class _NoTrace:
    class meta:  # what EpochStream reads of a trace
        epoch_ns = None
        clock = "ns"


def _reference_cut(t: np.ndarray, t0: int, epoch_ns: int) -> tuple[list[int], list[int]]:
    """Epoch number of every event, stragglers joining the latest epoch so far; its runs."""
    number = np.maximum.accumulate((t - t0) // epoch_ns)
    starts = [0] + [i for i in range(1, len(t)) if number[i] != number[i - 1]]
    return starts, [int(number[s]) for s in starts]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=200), st.integers(1, 700),
       st.integers(-300, 300), st.booleans())
def test_epochs_cut_where_the_epoch_number_changes(stamps, epoch_ns, shift, ordered):
    t = np.asarray(sorted(stamps) if ordered else stamps, dtype=np.int64)
    t0 = int(t[0]) + shift if ordered else int(t[0])
    stream = EpochStream(_NoTrace(), None, epoch_ns)
    starts, numbers = stream._cut(t, t0)
    assert (starts.tolist(), numbers.tolist()) == _reference_cut(t, t0, epoch_ns)


@st.composite
def _epoch(draw):
    npages = draw(st.integers(1, 3000))
    n = draw(st.integers(1, 400))
    page = np.asarray(draw(st.lists(st.integers(0, npages - 1), min_size=n, max_size=n)))
    weight = np.asarray(draw(st.lists(st.sampled_from([0.0, 1.0, 0.5, 3.0, 1e-3, 7e5]),
                                      min_size=n, max_size=n)))
    written = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if draw(st.booleans()):  # one weight for all: counted without event order
        weight[:] = weight[0]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return page, weight, written, npages, cuts


@settings(max_examples=150, deadline=None)
@given(_epoch(), st.booleans(), st.sampled_from([1.0, 0.5, 3.0]))
def test_page_counts_equal_the_dense_count_to_the_bit(epoch, renumber, scale):
    """Sorted distinct pages with their weights summed in event order, however split in runs.

    Twice in a row with the same counter: :meth:`PageCounts.take` leaves it
    clean for the next epoch.
    """
    page, weight, written, npages, cuts = epoch
    of_dense = np.random.default_rng(npages).permutation(npages) if renumber else None
    counter = PageCounts(npages, of_dense)
    op = np.where(written, OP_WRITE, OP_READ).astype(np.uint8)
    for _ in range(2):
        for start, end in zip([0, *cuts], [*cuts, len(page)], strict=True):
            counter.add(page[start:end], op[start:end], weight[start:end])
        pages, accesses, writes = counter.take(scale)
        ids = page if of_dense is None else of_dense[page]
        counts = np.zeros(npages)
        wrote = np.zeros(npages)
        for p, w, is_write in zip(ids.tolist(), weight.tolist(), written.tolist(), strict=True):
            counts[p] += w * scale  # one event after another: the order every path must keep
            wrote[p] += w * scale if is_write else 0.0
        touched = np.unique(ids)
        if 32 * len(page) >= npages:  # dense counting leaves out pages whose weights sum to 0
            touched = touched[counts[touched] != 0]
        assert pages.tolist() == touched.tolist()
        assert accesses.tobytes() == counts[touched].tobytes()
        assert writes.tobytes() == wrote[touched].tobytes()
