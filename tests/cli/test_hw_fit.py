"""`migpolicy hw fit` through the installed console script."""

from __future__ import annotations

import json
import subprocess

import pytest

from migpolicy.hardware.profile import load_profile
from migpolicy.hardware.tables import shipped_table


def migpolicy(*args, cwd=None):
    return subprocess.run(["migpolicy", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


FAST = ("--free", "memory.ccd_gbps", "--free", "memory.link_gbps")


def test_fit_writes_a_fitted_profile(tmp_path):
    out = tmp_path / "fitted.yaml"
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table",
                       str(shipped_table("3")), *FAST, "--name", "zen3-refit", "--out",
                       str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["converged"] is True
    assert summary["rows"] == 10
    assert set(summary["parameters"]) == {"memory.ccd_gbps", "memory.link_gbps"}
    assert summary["max_abs_pct_err"] <= 25
    profile = load_profile(out)
    assert profile.name == "zen3-refit"
    ccd = profile.sections["memory"]["ccd_gbps"]
    assert ccd.provenance.kind == "fitted"
    assert "rfc_v2_thread_placement_2m.csv" in ccd.provenance.detail["source"]
    assert ccd.value == pytest.approx(summary["parameters"]["memory.ccd_gbps"], rel=1e-5)
    # Parameters that were not free keep their provenance.
    assert profile.sections["engines.dma"]["channels"].provenance.kind == "assumed"


def test_fit_with_stage_table_reports_copy_share(tmp_path):
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table",
                       str(shipped_table("3")), "--stage-table", str(shipped_table("v1")),
                       "--mix-kernels", "--free", "stages.isolate.folio_ns",
                       "--out", str(tmp_path / "f.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    shares = json.loads(result.stdout)["copy_share"]
    at_256m = next(s for s in shares if s["total_bytes"] == 256 << 20)
    assert abs(at_256m["predicted"] - at_256m["observed"]) <= 0.05


def test_fit_that_does_not_converge_writes_nothing(tmp_path):
    out = tmp_path / "never.yaml"
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table",
                       str(shipped_table("3")), *FAST, "--max-evaluations", "1", "--out",
                       str(out))
    assert result.returncode == 1
    assert "did not converge" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_fit_rejects_malformed_table_and_unknown_parameter(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("engine,folio_kib,workers,total_mib,throughput_gbps\nmt,4,1,1024,fast\n")
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table", str(bad),
                       "--out", str(tmp_path / "o.yaml"))
    assert result.returncode == 1
    assert "bad.csv:2: column throughput_gbps: expected a number" in result.stderr
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table",
                       str(shipped_table("3")), "--free", "memory.warp_gbps", "--out",
                       str(tmp_path / "o.yaml"))
    assert result.returncode == 1
    assert "--free memory.warp_gbps" in result.stderr
    assert not (tmp_path / "o.yaml").exists()


def test_fit_refuses_tables_of_different_kernels_unless_told(tmp_path):
    out = tmp_path / "mixed.yaml"
    args = ("hw", "fit", "--base", "zen3-epyc-ptdma", "--table", "3", "--table", "v3-batch",
            *FAST, "--out", str(out))
    result = migpolicy(*args)
    assert result.returncode == 1
    assert "different kernels" in result.stderr and "--mix-kernels" in result.stderr
    assert "6.14.0-rc7+ + RFC V2" in result.stderr and "6.16.0-rc6 + RFC V3" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    result = migpolicy(*args, "--mix-kernels", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kernel"] is None  # no one kernel: the profile says so
    assert load_profile(out).kernel is None


def test_fit_records_the_tables_kernel_and_names_untrusted_parameters(tmp_path):
    out = tmp_path / "v3.yaml"
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma-6.14", "--table", "v3-batch",
                       "--free", "memory.ccd_gbps", "--free", "engines.gpu.launch_ns",
                       "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["kernel"] == "6.16.0-rc6 + RFC V3"
    assert "engines.gpu.launch_ns" in summary["undetermined"]  # no gpu row moves it
    assert "memory.ccd_gbps" not in summary["undetermined"]
    profile = load_profile(out)
    assert profile.kernel == "6.16.0-rc6 + RFC V3"
    launch = profile.sections["engines.gpu"]["launch_ns"]
    assert "engines.gpu.launch_ns" in launch.provenance.detail["undetermined"]


def test_fit_refuses_fewer_rows_than_free_parameters(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("engine,folio_kib,workers,total_mib,throughput_gbps\nmt,2048,1,1024,10.7\n")
    result = migpolicy("hw", "fit", "--base", "zen3-epyc-ptdma", "--table", str(one),
                       "--out", str(tmp_path / "o.yaml"))
    assert result.returncode == 1
    assert "1 rows cannot determine" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.yaml").exists()
