"""Reading a trace as columns: the same events as its EVENT_DTYPE chunks, nothing copied."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from migpolicy.traces import (
    EVENT_DTYPE,
    EventColumns,
    generated_trace,
    open_trace,
    trace_columns,
    trace_generators,
    write_native,
)

from .conftest import DATA


@pytest.fixture(scope="module")
def native(tmp_path_factory, builtin_pm):
    path = tmp_path_factory.mktemp("columns") / "tenants.mpt"
    trace = generated_trace(trace_generators(builtin_pm)["tenants"], 300_000, 5000, 3, {})
    with open(path, "wb") as handle:
        write_native(trace, handle)
    return path


def test_native_columns_are_the_parquet_columns(native, builtin_pm):
    """Checked against pyarrow's own read of the file, not against the reader."""
    table = pq.read_table(native)
    got = list(open_trace(native, builtin_pm).columns(1 << 16))
    assert [len(c) for c in got[:-1]] == [1 << 16] * (len(got) - 1)
    for name in EVENT_DTYPE.names:
        joined = np.concatenate([c[name] for c in got])
        assert np.array_equal(joined, table.column(name).to_numpy()), name


def test_native_columns_are_views_not_copies(native, builtin_pm):
    columns = next(open_trace(native, builtin_pm).columns())
    assert not columns.page.flags.writeable and not columns.page.flags.owndata


def test_columns_of_a_streamed_trace_match_its_chunks(builtin_pm):
    trace = open_trace(DATA / "true.lackey.gz", builtin_pm)
    rows = np.concatenate(list(trace.chunks(5000)))
    columns = list(trace_columns(trace, 5000))
    assert sum(len(c) for c in columns) == len(rows)
    for name in EVENT_DTYPE.names:
        assert np.array_equal(np.concatenate([c[name] for c in columns]), rows[name])


def test_event_columns_read_like_a_structured_chunk():
    events = np.zeros(5, dtype=EVENT_DTYPE)
    events["page"] = [4, 3, 2, 1, 0]
    events["weight"] = 2.5
    columns = EventColumns.of(events)
    assert len(columns) == 5
    assert columns["page"].tolist() == [4, 3, 2, 1, 0]
    part = columns[1:3]
    assert isinstance(part, EventColumns) and part.page.tolist() == [3, 2]
    assert part["weight"].tolist() == [2.5, 2.5]
    with pytest.raises(KeyError):
        columns["address"]
