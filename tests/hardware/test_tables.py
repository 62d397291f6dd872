"""Reading tidy throughput tables and stage-share tables: valid, malformed, property-based."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.hardware.tables import (
    SHIPPED_TABLES,
    read_stage_table,
    read_table,
    shipped_table,
)

ENGINES = ("cpu", "mt", "dma", "gpu")


def write_csv(path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_shipped_tables_read_with_their_row_counts():
    counts = {key: len(read_table(shipped_table(key), ENGINES)) for key in SHIPPED_TABLES}
    assert counts == {"1ab": 90, "2": 16, "3": 10, "v3": 104, "v3-batch": 27}


def test_folio_count_derived_from_total_mib():
    rows = read_table(shipped_table("1ab"), ENGINES)
    four_k = rows[(rows["folio_bytes"] == 4096) & (rows["engine"] == "mt")]
    assert set(four_k["folio_count"]) == {262144}
    assert set(rows["scope"]) == {"move"}


def test_placement_read_from_table_3():
    rows = read_table(shipped_table("3"), ENGINES)
    assert sorted(set(rows["placement"])) == ["fill", "spread"]


def test_missing_column_names_it(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["engine", "folio_kib", "throughput_gbps", "total_mib"],
                     [["mt", 4, 1.0, 1024]])
    with pytest.raises(InputError, match=r"t\.csv: missing column workers"):
        read_table(path, ENGINES)


def test_non_numeric_value_names_row_and_column(tmp_path):
    path = write_csv(tmp_path / "t.csv",
                     ["engine", "folio_kib", "workers", "total_mib", "throughput_gbps"],
                     [["mt", 4, 1, 1024, 1.7], ["mt", "four", 1, 1024, 1.7]])
    with pytest.raises(InputError, match=r"t\.csv:3: column folio_kib: expected a number"):
        read_table(path, ENGINES)


def test_unknown_engine_names_row(tmp_path):
    path = write_csv(tmp_path / "t.csv",
                     ["engine", "folio_kib", "workers", "total_mib", "throughput_gbps"],
                     [["warp", 4, 1, 1024, 1.7]])
    with pytest.raises(InputError, match=r"t\.csv:2: unknown engine 'warp'"):
        read_table(path, ENGINES)


def test_bad_placement_and_scope(tmp_path):
    header = ["engine", "folio_kib", "workers", "total_mib", "throughput_gbps", "placement",
              "scope"]
    bad_placement = write_csv(tmp_path / "p.csv", header, [["mt", 4, 1, 1024, 1.7, "x", "move"]])
    with pytest.raises(InputError, match="column placement"):
        read_table(bad_placement, ENGINES)
    bad_scope = write_csv(tmp_path / "s.csv", header, [["mt", 4, 1, 1024, 1.7, "fill", "all"]])
    with pytest.raises(InputError, match="column scope"):
        read_table(bad_scope, ENGINES)


def test_empty_and_missing_files(tmp_path):
    empty = write_csv(tmp_path / "e.csv",
                      ["engine", "folio_kib", "workers", "total_mib", "throughput_gbps"], [])
    with pytest.raises(InputError, match="no data rows"):
        read_table(empty, ENGINES)
    with pytest.raises(InputError, match="cannot read"):
        read_table(tmp_path / "absent.csv", ENGINES)


row_strategy = st.tuples(
    st.sampled_from(ENGINES),
    st.sampled_from([4, 16, 64, 512, 2048]),
    st.integers(1, 64),
    st.integers(1, 100000),
    st.floats(0.01, 500, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=20))
def test_valid_rows_round_trip(tmp_path_factory, rows):
    path = write_csv(tmp_path_factory.mktemp("t") / "t.csv",
                     ["engine", "folio_kib", "workers", "folio_count", "throughput_gbps"], rows)
    table = read_table(path, ENGINES)
    assert list(table["engine"]) == [r[0] for r in rows]
    assert list(table["folio_bytes"]) == [r[1] * 1024 for r in rows]
    assert list(table["folio_count"]) == [r[3] for r in rows]
    np.testing.assert_allclose(table["throughput_gbps"], [r[4] for r in rows])
    assert list(table["row"]) == list(range(2, len(rows) + 2))


@settings(max_examples=60, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=8), st.data())
def test_one_garbage_cell_is_reported_with_its_row(tmp_path_factory, rows, data):
    rows = [list(r) for r in rows]
    bad_row = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from([1, 2, 3, 4]))
    rows[bad_row][column] = data.draw(st.sampled_from(["", "x", "-3", "1e", "nan?"]))
    path = write_csv(tmp_path_factory.mktemp("t") / "t.csv",
                     ["engine", "folio_kib", "workers", "folio_count", "throughput_gbps"], rows)
    with pytest.raises(InputError, match=rf"t\.csv:{bad_row + 2}: column "):
        read_table(path, ENGINES)


def test_stage_table_shipped_and_malformed(tmp_path):
    rows = read_stage_table(shipped_table("v1"))
    cpu = rows[rows["path"] == "cpu_generic"]
    assert list(cpu["total_bytes"]) == [4096, 2 << 20, 256 << 20, 1 << 30]
    bad = write_csv(tmp_path / "v1.csv", ["path", "total_size", "copy_fraction"],
                    [["cpu_generic", "256MB", "1.5"]])
    with pytest.raises(InputError, match=r"v1\.csv:2: column copy_fraction"):
        read_stage_table(bad)
    missing = write_csv(tmp_path / "m.csv", ["path", "copy_fraction"], [["cpu_generic", "0.2"]])
    with pytest.raises(InputError, match="missing column total_size"):
        read_stage_table(missing)
