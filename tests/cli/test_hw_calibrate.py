"""``migpolicy hw calibrate`` as a user runs it: a tiny real calibration, then --hw local."""

from __future__ import annotations

import json

from migpolicy.execute import gpu_backend
from migpolicy.hardware.tables import read_table

#: The --quick preset narrowed further so that a test measures for about a second.
TINY = ("--quick", "--sizes", "64K,1M", "--counts", "1,4,8", "--samples", "2", "--max-bytes", "8M")


def test_calibrate_writes_a_local_profile_that_hw_local_finds(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MIGPOLICY_PROFILE_DIR", str(tmp_path))
    code, out, err = run_cli("hw", "calibrate", *TINY, "--json", timeout=120)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["profile"] == str(tmp_path / "local.yaml")
    assert summary["table"] == str(tmp_path / "local.csv")
    assert summary["provenance"]["kind"] == "measured"
    assert summary["provenance"]["command"].startswith("migpolicy hw calibrate --quick")
    assert summary["median_abs_pct_err"] <= summary["max_abs_pct_err"]
    assert "engines.mt.thread_start_ns" in set(summary["parameters"])
    # a copy cap the measurements cannot tell is named in a note instead of written at a bound
    assert "memory.thread_gbps" in summary["parameters"] or any(
        "memory.thread_gbps" in note for note in summary["notes"])
    if gpu_backend() is None:
        assert any(note.startswith("gpu skipped") for note in summary["notes"])
    rows = read_table(summary["table"], ["cpu", "mt"])
    assert len(rows) == summary["experiments"]
    assert set(rows["folio_bytes"]) == {64 << 10, 1 << 20}

    code, out, err = run_cli("hw", "show", "local", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["path"] == str(tmp_path / "local.yaml")
    assert shown["provenance"]["calibration"]["kind"] == "measured"
    # every fitted value is shown as calibrated (thread_gbps only when the rows told it)
    assert {shown["parameters"][name]["provenance"] for name in summary["parameters"]} == {
        "calibration"}

    code, out, err = run_cli("move", "--hw", "local", "--bytes", "8M", "--folio", "64K",
                             "--engine", "mt", "--workers", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["hw"] == "local"


def test_calibrate_prints_a_summary_for_people(run_cli, tmp_path) -> None:
    out_file = tmp_path / "here.yaml"
    code, out, err = run_cli("hw", "calibrate", *TINY, "--engines", "cpu", "--out", out_file,
                             timeout=120)
    assert code == 0, err
    assert "median |error|" in out and f"wrote {out_file}" in out
    assert "memory.thread_gbps =" in out
    assert (tmp_path / "here.csv").exists()


def test_calibrate_refuses_engines_it_cannot_measure(run_cli, tmp_path) -> None:
    code, _, err = run_cli("hw", "calibrate", "--engines", "cpu,dma", "--out",
                           tmp_path / "x.yaml")
    assert code == 1
    assert err.strip() == "Error: --engines: calibration measures cpu, mt and gpu, not dma"
    assert not list(tmp_path.iterdir())


def test_calibrate_rejects_a_bad_size_list(run_cli) -> None:
    code, _, err = run_cli("hw", "calibrate", "--sizes", "4K,lots")
    assert code == 2 and "--sizes" in err and "'lots'" in err


def test_calibrate_help_has_examples(run_cli) -> None:
    code, out, _ = run_cli("hw", "calibrate", "--help")
    assert code == 0
    assert "Examples:" in out and "migpolicy hw calibrate --quick" in out


def test_calibrate_refuses_folio_sizes_move_refuses(run_cli, tmp_path):
    out = tmp_path / "x.yaml"
    code, _, err = run_cli("hw", "calibrate", "--quick", "--sizes", "4K,3K", "--out", out,
                                timeout=60)
    assert code != 0
    assert "--sizes 3K" in err and "power of two" in err
    assert "Traceback" not in err and not out.exists()
    assert list(tmp_path.iterdir()) == []
