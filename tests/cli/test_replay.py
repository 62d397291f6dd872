"""``migpolicy replay`` as a user runs it: the console script on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "traces" / "data"
DAMO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "damo"
KEYS = {"events", "epochs", "promoted_pages", "demoted_pages", "migrated_bytes",
        "fast_hit_ratio", "app_time_s", "migration", "bound"}


@pytest.fixture
def run_here():
    """Run ``migpolicy ARGS...`` in this process (click's runner): for the many error cases."""
    from click.testing import CliRunner

    from migpolicy.cli.main import main

    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture(scope="module")
def phases(phases_trace) -> Path:
    return phases_trace("300000", 2048)


def test_replay_json_has_the_documented_keys(run_cli, phases):
    code, out, err = run_cli("replay", phases, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert KEYS <= set(data)
    assert {"wall_s", "cpu_s", "stages"} <= set(data["migration"])
    assert {"static_hit_ratio", "oracle_hit_ratio"} <= set(data["bound"])
    assert data["policy"] == {"placement": "numab", "placement.demotion": "watermark"}
    assert data["events"] == 300_000
    assert data["epochs"] == 30  # 300,000 events 100 ns apart: 30 ms in epochs of 1 ms
    assert data["promoted_pages"] > 0
    assert 0 <= data["fast_hit_ratio"] <= data["bound"]["oracle_hit_ratio"] <= 1


def test_compare_prints_policies_side_by_side(run_cli, phases):
    code, out, err = run_cli("replay", phases, "--compare", "none,hist,damos+none",
                             "--fast", "2M", "--epoch", "2ms")
    assert code == 0, err
    header = next(line for line in out.splitlines() if "none" in line and "hist" in line)
    assert header.index("none") < header.index("hist+watermark") < header.index("damos")
    assert "offline bounds" in out and "per stage" in out
    code, out, err = run_cli("replay", phases, "--compare", "none,hist", "--json")
    labels = [r["label"] for r in json.loads(out)["results"]]
    assert labels == ["none", "hist+watermark"]


def test_policy_file_and_param_override(run_here, phases, tmp_path):
    policy = tmp_path / "tuned.yaml"
    policy.write_text("placement: hist\nhist.rate_limit_mbps: 64\n")
    code, out, err = run_here("replay", phases, "--policy", policy, "--param",
                             "hist.rate_limit_mbps=128", "--json")
    assert code == 0, err
    params = json.loads(out)["params"]
    assert params["placement"] == "hist" and params["hist.rate_limit_mbps"] == 128.0


@pytest.mark.parametrize(("content", "message"), [
    ("placement: hist\nhist.rate_limt_mbps: 64\n",
     r"tuned\.yaml:2: unknown parameter 'hist\.rate_limt_mbps'; did you mean "
     r"hist\.rate_limit_mbps"),
    ("placement: [hist\n", r"tuned\.yaml:\d+: invalid YAML"),
    ("- placement\n", r"tuned\.yaml: expected a flat mapping"),
])
def test_a_broken_policy_file_is_one_sentence(run_here, phases, tmp_path, content, message):
    import re

    policy = tmp_path / "tuned.yaml"
    policy.write_text(content)
    code, out, err = run_here("replay", phases, "--policy", policy)
    assert code == 1 and not out
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (("--param", "placement=lru"), "unknown promotion policy (known: damos, hist, none, "
                                   "numab)"),
    (("--compare", "none,lru"), "placement=lru: unknown promotion policy"),
    (("--fast", "1T"), "--fast 1TiB is larger than node 0 (ddr5) of profile dram-cxl"),
    (("--epoch", "5ns"), "shorter than the trace's resolution: its time stamps are 100 ns "
                         "apart"),
    (("--fast", "lots"), "--fast 'lots': expected a size such as 64M or a percentage"),
])
def test_bad_options_are_one_sentence(run_here, phases, args, message):
    code, _out, err = run_here("replay", phases, *args)
    assert code == 1, err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_trace_is_one_sentence(run_here, tmp_path):
    empty = tmp_path / "empty.lackey"
    empty.write_bytes(b"")
    code, _, err = run_here("replay", empty)
    assert code == 1 and "the file is empty" in err


def test_report_directory_is_written_whole(run_cli, phases, tmp_path):
    out_dir = tmp_path / "report"
    code, _out, err = run_cli("replay", phases, "--compare", "none,numab", "--report", out_dir)
    assert code == 0, err
    assert {p.name for p in out_dir.iterdir()} == {"index.html", "replay.json",
                                                   "timeline.png", "app_time.png",
                                                   "stages.png", "engines.png"}
    assert [r["label"] for r in json.loads((out_dir / "replay.json").read_text())[
        "results"]] == ["none", "numab+watermark"]
    # a second run replaces the report; nothing is left beside it
    code, _, err = run_cli("replay", phases, "--report", out_dir)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_report_refuses_a_directory_that_is_not_a_report(run_here, phases, tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    code, _, err = run_here("replay", phases, "--report", precious)
    assert code == 1 and "not a replay report" in err
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("name", ["sort.lackey.xz", "true.lackey.gz"])
def test_lackey_traces_of_real_programs_replay_with_every_policy(run_cli, name):
    code, out, err = run_cli("replay", DATA / name, "--epoch", "20000", "--compare",
                             "none,numab,hist,damos", "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [r["clock"] for r in results] == ["ordinal"] * 4
    assert any("no clock" in note for note in results[0]["notes"])
    for r in results:
        assert r["fast_hit_ratio"] <= r["bound"]["oracle_hit_ratio"] + 1e-12


def test_the_damon_recording_replays_with_every_policy(run_cli):
    if not (DAMO / "damon.data").is_file():
        pytest.skip(f"no shared DAMON data at {DAMO}")
    code, out, err = run_cli("replay", DAMO / "damon.data", "--epoch", "snapshot",
                             "--compare", "none,numab,hist,damos", "--scale", "10", "--events",
                             "3000000", "--json", timeout=300)
    assert code == 0, err
    results = json.loads(out)["results"]
    assert any("samples" in note and "estimate" in note for note in results[0]["notes"])
    for r in results:
        assert r["events"] > 0
        assert r["fast_hit_ratio"] <= r["bound"]["oracle_hit_ratio"] + 1e-12
