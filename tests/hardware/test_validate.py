"""Validation: per-row errors, their median and max, the JSON form, the plot."""

from __future__ import annotations

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.hardware.predict import pipeline_predictor
from migpolicy.hardware.tables import read_table, shipped_table
from migpolicy.hardware.validate import _series, _x_axis, plot, table_records, validate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma-6.14")  # the RFC V2 kernel's fit


@pytest.fixture(scope="module")
def table_1ab(zen3):
    return validate(zen3.pm, zen3.hw, shipped_table("1ab"), zen3.params,
                    engines=list(zen3.engines))


def test_shipped_profile_meets_the_published_tables_1a_1b(table_1ab) -> None:
    out = table_1ab.as_json()
    assert len(out["rows"]) == 90
    assert out["median_abs_pct_err"] <= 10
    assert out["max_abs_pct_err"] <= 25
    assert "learned" not in out


def test_every_row_keeps_its_columns_and_gains_prediction_and_error(zen3, table_1ab) -> None:
    out = table_1ab.as_json()
    first = out["rows"][0]
    assert {"engine", "folio_kib", "workers", "total_mib", "throughput_gbps", "predicted_gbps",
            "abs_pct_err"} <= set(first)
    assert first["engine"] == "mt" and first["folio_kib"] == 4 and first["total_mib"] == 1024
    rows = read_table(shipped_table("1ab"), zen3.engines)
    predicted = pipeline_predictor(zen3.pm, zen3.params)(zen3.hw, rows)
    for row, expected in zip(out["rows"], predicted, strict=True):
        assert row["predicted_gbps"] == pytest.approx(expected)
        assert row["abs_pct_err"] == pytest.approx(
            abs(row["predicted_gbps"] / row["throughput_gbps"] - 1) * 100)
    errors = [r["abs_pct_err"] for r in out["rows"]]
    assert out["median_abs_pct_err"] == pytest.approx(np.median(errors))
    assert out["max_abs_pct_err"] == pytest.approx(max(errors))


def test_a_second_model_is_reported_side_by_side(zen3) -> None:
    from dataclasses import replace

    slower = zen3.hw.with_values({"memory.thread_gbps": zen3.hw.p("memory.thread_gbps") / 2},
                                 next(iter(zen3.hw.provenances.values())))
    result = validate(zen3.pm, zen3.hw, shipped_table("3"), zen3.params,
                      engines=list(zen3.engines), learned_hw=replace(slower, name="other"))
    out = result.as_json()
    assert set(out["learned"]) == {"median_abs_pct_err", "max_abs_pct_err"}
    assert all({"learned_gbps", "learned_abs_pct_err"} <= set(r) for r in out["rows"])
    assert out["rows"][0]["learned_gbps"] < out["rows"][0]["predicted_gbps"]


def test_table_records_parse_numbers_and_keep_text(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("engine,folio_kib,workers,folio_count,throughput_gbps,note\n"
                    "mt,4,2,16,1.5,fast\n")
    assert table_records(path) == {2: {"engine": "mt", "folio_kib": 4, "workers": 2,
                                       "folio_count": 16, "throughput_gbps": 1.5,
                                       "note": "fast"}}


def test_a_malformed_table_names_its_row(zen3, tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("engine,folio_kib,workers,total_mib,throughput_gbps\n"
                    "mt,4,1,1024,1.7\nmt,4,1,1024,fast\n")
    with pytest.raises(InputError, match=r"bad.csv:3: column throughput_gbps"):
        validate(zen3.pm, zen3.hw, path, zen3.params, engines=list(zen3.engines))


@pytest.mark.parametrize(("key", "x"), [("1ab", "folio_bytes"), ("2", "folio_count"),
                                        ("3", "workers")])
def test_the_x_axis_is_folio_size_unless_the_table_fixes_it(zen3, key, x) -> None:
    rows = read_table(shipped_table(key), zen3.engines)
    assert _x_axis(rows[rows["engine"] == "mt"])[0] == x


def test_lines_are_per_worker_count_and_per_folio_count_where_both_vary() -> None:
    from migpolicy.hardware.tables import ROW_DTYPE

    rows = np.array([("mt", size, w, n, "spread", "push", "copy", 1.0, 2)
                     for size in (4096, 65536) for w in (1, 2) for n in (1, 16)], dtype=ROW_DTYPE)
    labels = [label for label, _ in _series(rows, "folio_bytes")]
    assert labels == ["1 worker, 1 folio", "1 worker, 16 folios", "2 workers, 1 folio",
                      "2 workers, 16 folios"]
    one_count = rows[rows["folio_count"] == 16]
    assert [label for label, _ in _series(one_count, "folio_bytes")] == ["1 worker",
                                                                          "2 workers"]


@pytest.mark.parametrize("key", ["1ab", "2", "3"])
def test_plot_writes_a_png(zen3, tmp_path, key) -> None:
    result = validate(zen3.pm, zen3.hw, shipped_table(key), zen3.params,
                      engines=list(zen3.engines), learned_hw=zen3.hw)
    path = tmp_path / f"table{key}.png"
    plot(result, path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    from matplotlib.image import imread

    height, width, _ = imread(path).shape
    assert width > 600 and height > 400
