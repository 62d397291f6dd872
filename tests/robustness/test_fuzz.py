"""Hypothesis fuzzing of every parser of user input, in process.

Each parser must answer anything with a value or with one sentence (a
:class:`MigpolicyError` or click's usage error, one line) — never another
exception. Sizes are fuzzed in tests/test_units.py and YAML in
tests/hardware/test_yamlfile.py; here: CSV tables, ``--param`` assignments
and whole profiles.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migpolicy.cli.output import parse_assignments
from migpolicy.context import build_context
from migpolicy.errors import MigpolicyError
from migpolicy.hardware.profile import load_profile
from migpolicy.hardware.tables import read_table
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.plugins.profiles import shipped_dir

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
COLUMNS = ("engine", "folio_kib", "workers", "folio_count", "total_mib", "throughput_gbps",
           "placement", "side", "scope")
_NOT_FINITE = re.compile(r"^\s*[+-]?(nan|inf|infinity)\s*$", re.IGNORECASE)


def _one_sentence(exc: BaseException) -> None:
    assert isinstance(exc, MigpolicyError | click.UsageError), repr(exc)
    assert "\n" not in str(exc) and str(exc).strip()


_finite_cells = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["cpu", "mt", "dma", "gpu", "spread", "fill", "push", "pull", "move",
                     "copy", ""]),
    st.text(max_size=6).filter(lambda t: not _NOT_FINITE.match(t)),
)


def _table(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@FUZZ
@given(header=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=9, unique=True),
       data=st.data())
def test_a_table_of_any_finite_cells_reads_or_names_its_row(tmp_path: Path, header, data
                                                            ) -> None:
    rows = data.draw(st.lists(st.lists(_finite_cells, min_size=len(header),
                                       max_size=len(header)), max_size=4))
    path = _table(tmp_path, header, rows)
    try:
        table = read_table(path, ["cpu", "mt", "dma", "gpu"])
    except Exception as exc:
        _one_sentence(exc)
        assert str(exc).startswith(str(path))
    else:
        assert len(table) == len(rows)
        assert (table["folio_bytes"] > 0).all() and (table["throughput_gbps"] > 0).all()


@FUZZ
@given(cell=st.sampled_from(["nan", "inf", "1e999", "9" * 30]),
       column=st.sampled_from(["folio_kib", "workers", "folio_count", "throughput_gbps"]))
def test_a_table_with_non_finite_or_huge_numbers_is_refused(tmp_path: Path, cell: str,
                                                            column: str) -> None:
    row = {"engine": "cpu", "folio_kib": "4", "workers": "1", "folio_count": "16",
           "throughput_gbps": "2.5", column: cell}
    path = _table(tmp_path, list(row), [list(row.values())])
    with pytest.raises(MigpolicyError):
        read_table(path)


_PM = get_plugin_manager(entry_points=False)
_KEYS = ("engine", "workers", "system.load", "account.policy", "mt.placement", "mt.side",
         "batch.max_folios", "nonsense", "")


@FUZZ
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from(_KEYS), st.one_of(st.text(max_size=8), st.integers().map(str),
                                                st.floats().map(repr))).map("=".join),
    st.text(max_size=12)), max_size=4))
def test_any_param_assignments_resolve_or_are_one_sentence(items: list[str]) -> None:
    try:
        context = build_context(pm=_PM, params=parse_assignments(tuple(items)))
    except Exception as exc:
        _one_sentence(exc)
    else:
        engine = context.engines.get(context.engine)
        assert engine is None or engine.workers(context.params) >= 1


_PROFILE = (shipped_dir() / "zen3-epyc-ptdma.yaml").read_text(encoding="utf-8")
_NUMBERS = list(re.finditer(r"(?<=: )-?[0-9][0-9.eE+-]*", _PROFILE))


@FUZZ
@given(picks=st.lists(st.integers(0, len(_NUMBERS) - 1), min_size=1, max_size=3, unique=True),
       value=st.one_of(st.integers(-10**30, 10**30).map(str), st.floats().map(repr),
                       st.sampled_from(["", "~", "[]", "{}", "yes", "'4K'", "4K", "-4K",
                                        "1e999", ".nan", "&a 1", "*a"]),
                       st.text(alphabet="abc01.-:[]{}&*!, ", max_size=8)))
def test_a_profile_with_any_value_changed_loads_or_names_its_line(tmp_path: Path, picks,
                                                                   value: str) -> None:
    text = _PROFILE
    for index in sorted(picks, reverse=True):
        match = _NUMBERS[index]
        text = text[:match.start()] + value + text[match.end():]
    path = tmp_path / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_profile(path)
    except Exception as exc:
        _one_sentence(exc)
        assert str(exc).startswith(str(path))
