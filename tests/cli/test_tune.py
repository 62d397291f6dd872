"""``migpolicy tune`` as a user runs it: the console script on generated traces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml

KEYS = {"best_value", "best_params", "baseline_value", "improvement_pct", "trials",
        "replays_full", "replays_pruned", "screened_out", "replays_cached", "replays_matched",
        "trials_failed",
        "replay_equivalents", "study", "storage"}
OUTCOMES = ("replays_full", "replays_pruned", "screened_out", "replays_cached", "replays_matched",
            "trials_failed")


@pytest.fixture(scope="module")
def phases(small_phases) -> Path:
    return small_phases


def test_tune_json_export_and_replay_round_trip(run_cli, phases, tmp_path):
    best = tmp_path / "best.yaml"
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    code, out, err = run_cli("tune", phases, "--trials", "6", "--seed", "2", "--epoch", "500us",
                             "--storage", storage, "--study", "rt", "--export", best, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert KEYS <= set(data)
    assert data["trials"] == 6 and data["study"] == "rt" and data["storage"] == storage
    assert sum(data[k] for k in OUTCOMES) == 6
    assert 0 < data["replay_equivalents"] <= 6
    assert data["best_value"] <= data["baseline_value"]  # the kernel default is trial 0
    assert data["improvement_pct"] == pytest.approx(
        100 * (data["baseline_value"] - data["best_value"]) / data["baseline_value"])
    # the exported policy replays to the best value, through the replay command
    exported = yaml.safe_load(best.read_text())
    assert {k: exported[k] for k in data["best_params"]} == data["best_params"]
    code, out, err = run_cli("replay", phases, "--policy", best, "--epoch", "500us", "--json")
    assert code == 0, err
    assert json.loads(out)["app_time_s"] == pytest.approx(data["best_value"], rel=1e-9)
    # the baseline is what replay prints for the kernel default
    code, out, err = run_cli("replay", phases, "--epoch", "500us", "--json")
    assert json.loads(out)["app_time_s"] == pytest.approx(data["baseline_value"], rel=1e-9)


@pytest.mark.parametrize("match", [True, False])
def test_candidates_that_replay_alike_are_matched_unless_told_not_to(run_cli, phases, tmp_path,
                                                                     match):
    # a policy that never migrates: every engine and batch size replays the same
    code, out, err = run_cli("tune", phases, "--trials", "4", "--seed", "1", "--epoch", "500us",
                             "--param", "placement=none", "--param", "placement.demotion=none",
                             "--storage", f"sqlite:///{tmp_path / 's.db'}", "--json",
                             "--match" if match else "--no-match")
    assert code == 0, err
    data = json.loads(out)
    assert data["replays_full"] + data["replays_cached"] + data["replays_matched"] == 4
    if match:
        assert data["replays_full"] == 1 and data["replays_matched"] >= 2
        # a matched candidate replayed 5/8 of the trace
        assert data["replay_equivalents"] == pytest.approx(1 + data["replays_matched"] * 5 / 8)
    else:
        assert data["replays_matched"] == 0 and data["replays_full"] >= 3


def test_default_storage_is_a_file_in_the_working_directory_and_resumes(migpolicy_exe, phases,
                                                                        tmp_path):
    def tune(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([migpolicy_exe, "tune", str(phases), "--trials", "2", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)

    first = tune("--json")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "migpolicy-studies.db").is_file()
    again = tune()  # human output, and the study goes on
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # no progress bar when stderr is not a terminal
    assert "4 trials" in again.stdout and "better" in again.stdout
    refused = tune("--param", "engine=mt", "--json")
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "this run's space is" in refused.stderr


def test_bad_input_is_one_sentence_before_any_work(run_cli, phases, tmp_path):
    code, out, err = run_cli("tune", phases, "--param", "placement=nosuch", "--json")
    assert code == 1 and out == "" and "nosuch" in err
    code, out, err = run_cli("tune", phases, "--storage", "nosuchdb://x", "--study", "a")
    assert code == 1 and "cannot open the study storage" in err
    code, out, err = run_cli("tune", phases, "--export", tmp_path / "no" / "best.yaml")
    assert code == 1 and "does not exist" in err
    assert not list(tmp_path.iterdir())


def test_ctrl_c_keeps_the_completed_trials(migpolicy_exe, phases, tmp_path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([migpolicy_exe, "tune", str(phases), "--trials", "500", "--storage",
                             f"sqlite:///{db}", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{db}"
    deadline = time.monotonic() + 40
    done = 0
    while time.monotonic() < deadline and done < 3:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="migpolicy", storage=storage)
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        except (KeyError, sqlalchemy.exc.OperationalError):  # not created yet
            continue
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert out == "" and err.strip() == "migpolicy: interrupted"
    study = optuna.load_study(study_name="migpolicy", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 3
    assert all(t.user_attrs["outcome"] in ("full", "cached", "matched") for t in complete)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_timeout_stops_starting_trials(run_cli, phases, tmp_path):
    code, out, err = run_cli("tune", phases, "--trials", "10000", "--timeout", "2", "--storage",
                             f"sqlite:///{tmp_path / 's.db'}", "--json", timeout=60)
    assert code == 0, err
    assert 1 <= json.loads(out)["trials"] < 10000


def test_two_objectives_under_a_cpu_budget_print_the_front(run_cli, phases, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run_cli("tune", phases, "--objective", "multi", "--cpu-budget", "0.5",
                             "--trials", "6", "--seed", "1", "--epoch", "500us", "--storage",
                             storage, "--json")
    assert code == 0, err
    data = json.loads(out)
    front = [p["values"] for p in data["pareto_front"]]
    assert data["best_values"] == min(front) and data["cpu_budget"] == 0.5
    assert all(cpu <= 0.5 * app for app, cpu in front)  # only feasible trials are on it
    code, out, err = run_cli("tune", phases, "--objective", "multi", "--cpu-budget", "0.5",
                             "--trials", "1", "--epoch", "500us", "--storage", storage)
    assert code == 0, err
    assert "Pareto front" in out and "CPU budget 0.5" in out
