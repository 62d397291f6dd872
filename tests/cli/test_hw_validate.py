"""``migpolicy hw validate`` and ``hw learn`` as a user runs them."""

from __future__ import annotations

import json

import pytest

from migpolicy.hardware.profile import load_profile
from migpolicy.hardware.tables import shipped_table

PNG = b"\x89PNG\r\n\x1a\n"
HEADER = "engine,folio_kib,workers,total_mib,throughput_gbps\n"


def test_validate_json_on_the_published_tables_1a_1b(run_cli) -> None:
    code, out, err = run_cli("hw", "validate", "zen3-epyc-ptdma-6.14", "--against",
                             shipped_table("1ab"), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["median_abs_pct_err"] <= 10
    assert result["max_abs_pct_err"] <= 25
    assert len(result["rows"]) == 90
    row = result["rows"][-1]
    assert {"engine", "folio_kib", "workers", "total_mib", "throughput_gbps", "predicted_gbps",
            "abs_pct_err"} <= set(row)
    assert row["abs_pct_err"] == pytest.approx(
        abs(row["predicted_gbps"] / row["throughput_gbps"] - 1) * 100)
    assert max(r["abs_pct_err"] for r in result["rows"]) == result["max_abs_pct_err"]
    assert "learned" not in result


def test_validate_prints_every_point_and_draws_the_plot(run_cli, tmp_path) -> None:
    plot = tmp_path / "table3.png"
    code, out, err = run_cli("hw", "validate", "zen3-epyc-ptdma", "--against", "3", "--plot",
                             plot)
    assert code == 0, err
    assert out.count(" mt ") >= 10 and "fill" in out and "spread" in out
    assert "analytic model: median |error|" in out and "over 10 rows" in out
    assert f"wrote {plot}" in out
    assert plot.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("engine,folio_kib,workers,throughput_gbps\nmt,4,1,1.7\n",
         "missing column total_mib or folio_count"),
        (HEADER + "mt,4,1,1024,1.72\nmt,16,1,1024,n/a\n",
         "bad.csv:3: column throughput_gbps: expected a number, got 'n/a'"),
        (HEADER + "mt,4,1,1024,1.72\nmt,16,1,1024,3.55\nwarp,4,1,1024,1.0\n",
         "bad.csv:4: unknown engine 'warp'"),
    ],
    ids=["missing-column", "non-numeric", "unknown-engine"],
)
def test_a_malformed_table_is_one_sentence_naming_the_row(run_cli, tmp_path, body, message):
    table = tmp_path / "bad.csv"
    table.write_text(body)
    code, out, err = run_cli("hw", "validate", "zen3-epyc-ptdma", "--against", table)
    assert code == 1 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_learned_without_a_model_is_refused(run_cli) -> None:
    code, _, err = run_cli("hw", "validate", "zen3-epyc-ptdma", "--against", "3", "--learned")
    assert code == 1
    assert "--learned: profile zen3-epyc-ptdma has no learned model" in err


@pytest.fixture(scope="module")
def learned_files(tmp_path_factory, migpolicy_exe):
    """`hw learn` on the published tables 1a/1b, 2 and 3: (profile path, JSON summary)."""
    import subprocess

    folder = tmp_path_factory.mktemp("learn")
    out = folder / "zen3-learned.yaml"
    proc = subprocess.run(
        [migpolicy_exe, "hw", "learn", "--base", "zen3-epyc-ptdma", "--out", str(out),
         "--json", *(arg for key in ("1ab", "2", "3") for arg in ("--table", shipped_table(key)))],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_learn_writes_the_model_and_a_learned_profile(learned_files) -> None:
    out, summary = learned_files
    profile = load_profile(out)
    assert profile.name == "zen3-learned"
    assert profile.cost_model == "learned" and profile.learned_model == "zen3-learned.skops"
    assert (out.parent / "zen3-learned.skops").exists()
    assert (out.parent / "zen3-learned.skops.json").exists()
    assert summary["samples"] == 116 and summary["engines"] == ["dma", "mt"]
    assert summary["cv"]["folds"] == 5
    for key in ("cv", "in_sample", "analytic"):
        assert summary[key]["median_abs_pct_err"] >= 0


def test_validate_reports_the_learned_model_beside_the_analytic_one(run_cli, learned_files):
    out, summary = learned_files
    code, text, err = run_cli("hw", "validate", out, "--against", "3", "--json")
    assert code == 0, err
    result = json.loads(text)
    learned = result["learned"]
    assert {"median_abs_pct_err", "max_abs_pct_err", "cv", "training_tables"} <= set(learned)
    assert learned["cv"] == summary["cv"]
    assert all("learned_gbps" in row and "predicted_gbps" in row for row in result["rows"])
    # the analytic column is the analytic model's, whatever the profile's cost_model says
    code, plain, _ = run_cli("hw", "validate", "zen3-epyc-ptdma", "--against", "3", "--json")
    assert [r["predicted_gbps"] for r in json.loads(plain)["rows"]] == pytest.approx(
        [r["predicted_gbps"] for r in result["rows"]])


def test_validate_takes_a_learned_model_file_for_any_profile(run_cli, learned_files) -> None:
    out, _ = learned_files
    code, text, err = run_cli("hw", "validate", "zen3-epyc-ptdma", "--against", "2",
                              "--learned-model", out.with_suffix(".skops"))
    assert code == 0, err
    assert "learned model:  median |error|" in text
    assert "5-fold cross-validated" in text


def test_help_has_examples(run_cli) -> None:
    for command in ("validate", "learn"):
        code, out, _ = run_cli("hw", command, "--help")
        assert code == 0 and "Examples:" in out and f"migpolicy hw {command}" in out


def test_the_plot_follows_the_umask_and_bad_destinations_fail_first(migpolicy_exe,
                                                                    tmp_path) -> None:
    import os
    import stat
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([migpolicy_exe, "hw", "validate", "zen3-epyc-ptdma", "--against",
                               "3", *args], capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: os.umask(0o027))

    done = run("--plot", str(tmp_path / "t3.png"))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "t3.png").stat().st_mode) == 0o640
    assert "analytic model: median |error|" in done.stdout  # the table, then the plot
    for bad, needle in (("nodir/t3.png", "does not exist"), ("t3.bmpx", "unknown image format")):
        failed = run("--plot", str(tmp_path / bad))
        assert failed.returncode == 1 and failed.stdout == "", failed.stderr
        assert needle in failed.stderr and "Traceback" not in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t3.png"]
