"""Dense page indices: first-touch order across chunks, against a dictionary reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.traces.pages import PageTable


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**50), max_size=40), max_size=8))
def test_first_touch_order_across_chunks(chunks) -> None:
    table = PageTable()
    reference: dict[int, int] = {}
    for chunk in chunks:
        dense = table.densify(np.array(chunk, dtype=np.int64))
        expected = [reference.setdefault(page, len(reference)) for page in chunk]
        assert dense.tolist() == expected
    assert table.numbers().tolist() == list(reference)
    assert len(table) == len(reference)
