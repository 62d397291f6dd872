"""``migpolicy tune --report DIR`` as a user runs it: the console script, the page in Chromium."""

from __future__ import annotations

import json
import subprocess

import optuna
import pytest


def test_tune_report_renders_in_chromium(run_cli, small_phases, tmp_path, render_in_chromium):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    report = tmp_path / "report"
    code, out, err = run_cli("tune", small_phases, "--trials", "5", "--seed", "3", "--storage",
                             storage, "--study", "page", "--report", report, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["report"] == f"{report}/index.html"
    saved = json.loads((report / "tune.json").read_text())
    assert saved["summary"] == {k: v for k, v in data.items() if k != "report"}
    study = optuna.load_study(study_name="page", storage=storage)
    assert [t["number"] for t in saved["trials"]] == [t.number for t in study.trials]
    assert [t["values"] for t in saved["trials"]] == [t.values for t in study.trials]
    assert saved["best_trials"] == [data["best_trial"]] == [study.best_trial.number]
    assert saved["history"]["best_so_far"][0][-1] == pytest.approx(data["best_value"])
    assert saved["baseline"] == [data["baseline_value"]]
    assert saved["objectives"] == ["app_time"]
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert "history.png" in pngs
    widths = render_in_chromium(report)
    assert len(widths) == len(pngs) and all(w > 100 for w in widths), widths
    page = (report / "index.html").read_text()
    assert "Every figure is modelled" in page and "kernel default" in page
    # human output names the page
    code, out, err = run_cli("tune", small_phases, "--trials", "1", "--storage", storage, "--study",
                             "page", "--report", report)
    assert code == 0, err
    assert f"report: {report}/index.html" in out
    assert len(json.loads((report / "tune.json").read_text())["trials"]) == 6


def test_a_bad_report_destination_is_refused_before_tuning(migpolicy_exe, small_phases, tmp_path):
    replay_report = tmp_path / "replay-report"
    replay_report.mkdir()
    (replay_report / "replay.json").write_text('{"results": []}')
    proc = subprocess.run([migpolicy_exe, "tune", str(small_phases), "--trials", "2", "--report",
                           str(replay_report), "--json"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "a replay report (replay.json) that is not a tuning report" in proc.stderr
    # refused before any work: no study storage was created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay-report"]
    assert [p.name for p in replay_report.iterdir()] == ["replay.json"]
