"""``tune --report``: real Optuna studies with known values, checked against hand-computed figures.

Studies are built with ``optuna.trial.create_trial`` (values known in advance)
or run with ``study.optimize`` on a small objective that prunes and fails, in
memory or in SQLite. What the report draws and lists is compared with what
Optuna itself says (``best_value``, ``best_trials``) and with figures computed
here by hand.
"""

from __future__ import annotations

import json
import math

import matplotlib.axes
import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from migpolicy.errors import InputError
from migpolicy.replay.report import check_report_dir as check_replay_dir
from migpolicy.tuning import report as report_module
from migpolicy.tuning.report import check_report_dir, report_data, write_report
from migpolicy.tuning.report_render import FIGURES

optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = {"x": FloatDistribution(0.0, 10.0), "engine": CategoricalDistribution(["cpu", "mt"])}


def _single(values, study_name="single") -> optuna.Study:
    """A minimised study whose complete trials have ``values``, params varying with them."""
    study = optuna.create_study(study_name=study_name)
    for i, value in enumerate(values):
        study.add_trial(create_trial(params={"x": float(i), "engine": ("cpu", "mt")[i % 2]},
                                     distributions=SPACE, value=value,
                                     user_attrs={"outcome": "full"}))
    return study


def _figures_drawn(monkeypatch) -> dict[str, list[np.ndarray]]:
    """Record every scatter series drawn: legend label → list of (n, 2) point arrays."""
    drawn: dict[str, list[np.ndarray]] = {}
    scatter = matplotlib.axes.Axes.scatter

    def record(self, x, y, *args, **kwargs):
        if kwargs.get("transform") is None:  # points in data coordinates
            drawn.setdefault(kwargs.get("label"), []).append(
                np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", record)
    return drawn


def test_single_objective_report_with_pruned_and_failed_trials(tmp_path, monkeypatch):
    study = _single([5.0, 3.0, 4.0, 1.0, 2.0])
    study.add_trial(create_trial(params={"x": 1.0, "engine": "cpu"}, distributions=SPACE,
                                 state=TrialState.PRUNED, intermediate_values={0: 2.5},
                                 user_attrs={"outcome": "pruned", "traces_replayed": 1}))
    study.add_trial(create_trial(params={"x": 2.0}, distributions={"x": SPACE["x"]},
                                 state=TrialState.FAIL,
                                 user_attrs={"outcome": "failed", "reason": "bad value"}))
    study.add_trial(create_trial(params={"x": 9.0, "engine": "mt"}, distributions=SPACE,
                                 state=TrialState.PRUNED, user_attrs={"outcome": "screened"}))
    study.add_trial(create_trial(params={"x": 3.0, "engine": "mt"}, distributions=SPACE,
                                 value=0.5, user_attrs={"outcome": "cached"}))
    study.add_trial(create_trial(params={"x": 1.5, "engine": "mt"}, distributions=SPACE,
                                 value=3.0, intermediate_values={0: 1.5},
                                 user_attrs={"outcome": "matched", "same_as": 1}))
    drawn = _figures_drawn(monkeypatch)
    axis_marks = []
    scatter = matplotlib.axes.Axes.scatter

    def on_axis(self, x, y, *args, **kwargs):
        if kwargs.get("transform") is not None:
            axis_marks.append((kwargs["label"], list(x)))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", on_axis)
    summary = {"best_value": 1.0, "baseline_value": 5.0, "improvement_pct": 80.0,
               "best_params": {"x": 3.0, "engine": "mt"}}
    out = write_report(tmp_path / "report", study, summary)
    assert sorted(p.name for p in out.iterdir()) == [
        "history.png", "importances.png", "index.html", "tune.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary left beside
    data = json.loads((out / "tune.json").read_text())
    assert data["summary"] == summary and data["objectives"] == ["objective 0"]
    assert [t["number"] for t in data["trials"]] == list(range(10))
    assert [t["state"] for t in data["trials"]] == ["complete"] * 5 + ["pruned", "fail",
                                                                      "pruned", "complete",
                                                                      "complete"]
    assert data["trials"][6]["user_attrs"] == {"outcome": "failed", "reason": "bad value"}
    assert data["trials"][3]["params"] == {"x": 3.0, "engine": "mt"}
    # best so far by hand: 5, 3, 3, 1, 1, unchanged by the pruned, failed and screened
    # trials, then the cached one's 0.5, unchanged by the matched one's 3
    assert data["history"]["best_so_far"] == [[5.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5,
                                               0.5]]
    assert data["history"]["best_so_far"][0][-1] == study.best_value
    assert data["best_trials"] == [8] == [study.best_trial.number]
    assert data["outcomes"] == {"full": 5, "pruned": 1, "screened": 1, "cached": 1, "matched": 1,
                                "failed": 1}
    assert data["baseline"] == [5.0]
    # the pruned trial is drawn at the partial value it reported
    assert drawn["pruned (partial sum when stopped)"][0].tolist() == [[5.0, 2.5]]
    assert drawn["replayed in full"][0][:, 1].tolist() == [5.0, 3.0, 4.0, 1.0, 2.0]
    assert drawn["cached (value of an earlier replay)"][0].tolist() == [[8.0, 0.5]]
    assert drawn["matched (value of an earlier replay it tied)"][0].tolist() == [[9.0, 3.0]]
    # trials without a value are marked on the axis, each in its outcome's style
    assert sorted(axis_marks, key=lambda m: m[1]) == [("failed, no value (on the axis)", [6]),
                          ("screened out, no value (on the axis)", [7])]
    page = (out / "index.html").read_text()
    assert "the Pareto front is the best trial (trial 8)" in page
    assert page.count("<figcaption>") == 2
    assert all("(modelled" in c for c in page.split("<figcaption>")[1:])
    assert "<td>improvement over the kernel default (%)</td><td>80</td>" in page


def test_multi_objective_front_is_optunas_best_trials(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    study = optuna.create_study(study_name="multi", directions=["minimize", "minimize"])
    study.set_user_attr("setup", {"objective": "multi"})
    for i in range(30):
        x = float(rng.uniform(0, 10))
        values = [x + float(rng.random()), 10 / (1 + x) + float(rng.random())]
        budget = x - 8.0  # the CPU budget is exceeded above x = 8
        study.add_trial(create_trial(params={"x": x, "engine": ("cpu", "mt")[i % 2]},
                                     distributions=SPACE, values=values,
                                     constraints={"cpu_budget": budget},
                                     user_attrs={"outcome": "full"}))
    drawn = _figures_drawn(monkeypatch)
    out = write_report(tmp_path / "report", study, {"baseline_value": [6.0, 3.0]})
    data = json.loads((out / "tune.json").read_text())
    front = sorted(study.best_trials, key=lambda t: t.values)
    assert front and data["best_trials"] == sorted(t.number for t in front)
    assert data["objectives"] == ["app_time", "migration_cpu"]
    # drawn: the highlighted series is exactly the front's values
    assert drawn["Pareto front"][0].tolist() == [t.values for t in front]
    infeasible = [t.values for t in study.trials if t.params["x"] > 8.0]
    assert infeasible and sorted(drawn["infeasible (constraint > 0)"][-1].tolist()) == \
        sorted(infeasible)
    assert not {t.number for t in study.trials if t.params["x"] > 8.0} & set(data["best_trials"])
    assert data["constrained"] and data["baseline"] == [6.0, 3.0]
    # per objective, the best so far of the feasible complete trials, by hand
    for i in range(2):
        expected, best = [], math.inf
        for t in study.trials:
            if t.params["x"] <= 8.0:
                best = min(best, t.values[i])
            expected.append(best)
        assert data["history"]["best_so_far"][i] == expected
    assert set(data["importances"]["values"]) == {"app_time", "migration_cpu"}
    # both objectives depend on x alone: x explains nearly all of the variance
    assert all(v["x"] > 0.9 for v in data["importances"]["values"].values())
    assert sorted(p.name for p in out.iterdir()) == ["history.png", "importances.png",
                                                     "index.html", "pareto.png", "tune.json"]
    page = (out / "index.html").read_text()
    assert f"{len(front)} trial(s) on the front" in page
    assert all(f"trial {t.number}<" in page for t in front)
    assert page.count("<figcaption>") == len(FIGURES)


def test_one_trial_only_says_why_there_are_no_importances(tmp_path):
    out = write_report(tmp_path / "one", _single([0.25]), {"baseline_value": 0.5})
    data = json.loads((out / "tune.json").read_text())
    assert data["history"]["best_so_far"] == [[0.25]]
    assert data["importances"]["values"] == {}
    assert "at least 2 complete trials; this study has 1" in data["importances"]["note"]
    assert not (out / "importances.png").exists()
    page = (out / "index.html").read_text()
    assert "Parameter importances need at least 2 complete trials" in page


def test_all_equal_params_say_why_there_are_no_importances(tmp_path):
    study = optuna.create_study()
    for value in (3.0, 1.0, 2.0):
        study.add_trial(create_trial(params={"x": 4.0}, distributions={"x": SPACE["x"]},
                                     value=value))
    data = report_data(study, {})
    assert "no parameter takes two different values" in data["importances"]["note"]
    assert data["outcomes"]["full"] == 3  # derived from the state: no outcome attribute
    assert data["history"]["best_so_far"] == [[3.0, 1.0, 1.0]]
    out = write_report(tmp_path / "same", study, {})
    assert "no parameter takes two different values" in (out / "index.html").read_text()


def test_a_study_run_by_optimize_in_sqlite(tmp_path):
    """Pruned trials keep their last reported value, failed ones have none (Optuna's storage)."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=storage, study_name="run",
                                sampler=optuna.samplers.RandomSampler(seed=1),
                                pruner=optuna.pruners.ThresholdPruner(upper=6.0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 10.0)
        n = trial.suggest_int("n", 1, 4)
        if n == 4:
            raise ArithmeticError("no policy here")
        for step in range(2):
            trial.report(x * (step + 1) / 2, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x + n

    study.optimize(objective, n_trials=25, catch=(ArithmeticError,))
    study = optuna.load_study(study_name="run", storage=storage)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.FAIL in states
    out = write_report(tmp_path / "report", study, {"baseline_value": 8.0})
    data = json.loads((out / "tune.json").read_text())
    assert data["outcomes"]["full"] == states.count(TrialState.COMPLETE)
    assert data["outcomes"]["pruned"] == states.count(TrialState.PRUNED)
    assert data["outcomes"]["failed"] == states.count(TrialState.FAIL)
    assert data["history"]["best_so_far"][0][-1] == study.best_value
    assert data["best_trials"] == [study.best_trial.number]
    assert data["importances"]["method"].startswith("fANOVA")
    assert set(data["importances"]["values"]["objective 0"]) == {"x", "n"}


def test_many_trials_switch_the_importances_to_ped_anova(monkeypatch):
    """Past FANOVA_MAX_TRIALS complete trials; the parameter that drives the value still leads."""
    rng = np.random.default_rng(5)
    study = optuna.create_study()
    for _ in range(60):
        params = {"x": float(rng.uniform(0, 10)), "engine": str(rng.choice(["cpu", "mt"]))}
        study.add_trial(create_trial(params=params, distributions=SPACE,
                                     value=params["x"] ** 2 + float(rng.random())))
    monkeypatch.setattr(report_module, "FANOVA_MAX_TRIALS", 40)
    found = report_data(study, {})["importances"]
    assert found["method"].startswith("PED-ANOVA") and "60 complete trials" in found["method"]
    values = found["values"]["objective 0"]
    assert sum(values.values()) == pytest.approx(1.0) and values["x"] > values["engine"]


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["minimize", "maximize"]),
       st.lists(st.tuples(st.sampled_from(["complete", "pruned", "fail"]),
                          st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=25))
def test_best_so_far_is_the_running_best_of_complete_trials(direction, trials):
    study = optuna.create_study(direction=direction)
    for state, value in trials:  # one fixed parameter: no importances to compute
        study.add_trial(create_trial(
            params={"n": 1}, distributions={"n": IntDistribution(1, 1)},
            state=TrialState[state.upper()], value=value if state == "complete" else None))
    line = report_data(study, {})["history"]["best_so_far"][0]
    pick = max if direction == "maximize" else min
    seen: list[float] = []
    for (state, value), best in zip(trials, line, strict=True):
        seen += [value] if state == "complete" else []
        assert best == (pick(seen) if seen else None)
    if seen:
        assert line[-1] == study.best_value


def test_a_directory_that_is_not_a_tuning_report_is_refused(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="a directory that is not a tuning report"):
        write_report(precious, _single([1.0]), {})
    replay = tmp_path / "replay-report"
    replay.mkdir()
    (replay / "replay.json").write_text('{"results": []}')
    with pytest.raises(InputError, match=r"a replay report \(replay.json\) that is not a tuning"):
        check_report_dir(replay)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert [p.name for p in replay.iterdir()] == ["replay.json"]
    # and the other way round: replay refuses a tuning report
    tuned = write_report(tmp_path / "tuned", _single([1.0, 2.0]), {})
    with pytest.raises(InputError, match=r"a tuning report \(tune.json\) that is not a replay"):
        check_replay_dir(tuned)
    # an empty directory, or a tuning report, is fine; the report replaces the old one
    (tmp_path / "empty").mkdir()
    assert check_report_dir(tmp_path / "empty") == tmp_path / "empty"
    write_report(tuned, _single([7.0], study_name="again"), {})
    assert json.loads((tuned / "tune.json").read_text())["study"] == "again"
    assert not (tuned / "importances.png").exists()  # nothing of the old report is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "precious", "replay-report",
                                                          "tuned"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError("disk full")])
def test_an_interrupt_or_error_while_writing_leaves_the_old_report_whole(tmp_path, monkeypatch,
                                                                         error):
    target = write_report(tmp_path / "report", _single([2.0, 1.0]), {"baseline_value": 3.0})
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(out, data):
        (out / "history.png").write_bytes(b"half")
        raise error

    monkeypatch.setattr(report_module, "figures", broken)
    with pytest.raises(type(error) if isinstance(error, Exception) else error):
        write_report(target, _single([9.0, 8.0, 7.0]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    # a first report interrupted leaves no directory at all
    with pytest.raises(type(error) if isinstance(error, Exception) else error):
        write_report(tmp_path / "new", _single([1.0]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
