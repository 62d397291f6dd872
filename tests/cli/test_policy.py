"""``migpolicy policy kernel`` as a user runs it: the console script on a tuned, exported policy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="module")
def exported(tmp_path_factory, migpolicy_exe) -> Path:
    """The policy ``migpolicy tune --trials 3 --export`` writes for a small generated trace."""
    folder = tmp_path_factory.mktemp("cli-policy")
    trace = folder / "phases.mpt"
    subprocess.run([migpolicy_exe, "trace", "gen", "phases", "--out", str(trace), "--events",
                    "40K", "--pages", "512", "--param", "interval_ns=100"], check=True,
                   capture_output=True)
    best = folder / "best.yaml"
    subprocess.run([migpolicy_exe, "tune", str(trace), "--trials", "3", "--seed", "1",
                    "--epoch", "500us", "--storage", f"sqlite:///{folder / 's.db'}",
                    "--export", str(best)], check=True, capture_output=True, timeout=300)
    return best


def test_tuned_export_maps_every_parameter(run_cli, exported):
    policy = yaml.safe_load(exported.read_text())
    code, out, err = run_cli("policy", "kernel", exported, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["hw"] == "dram-cxl" and data["policy"] == str(exported)
    covered = {name for s in data["settings"] for name in s["from_params"]}
    assert set(policy) <= covered | set(data["no_kernel_equivalent"])
    for key, entry in data["no_kernel_equivalent"].items():
        assert entry["value"] == policy[key] and entry["reason"]
    # the text output says the same, one parameter at a time
    code, out, err = run_cli("policy", "kernel", exported)
    assert code == 0, err
    for key in policy:
        assert f"{key}=" in out


def test_numab_policy_prints_commands_to_paste(run_cli, tmp_path):
    path = tmp_path / "numab.yaml"
    path.write_text("placement: numab\nplacement.demotion: watermark\n"
                    "numab.rate_limit_mbps: 256\nnumab.hint_fault_ns: 800\nengine: mt\n")
    code, out, err = run_cli("policy", "kernel", path)
    assert code == 0, err
    assert "sysctl -w kernel.numa_balancing=2  # from placement=numab" in out
    assert "sysctl -w kernel.numa_balancing_promote_rate_limit_MBps=256  # from " \
           "numab.rate_limit_mbps=256" in out
    assert "echo true > /sys/kernel/mm/numa/demotion_enabled" in out
    assert "echo 256 > /sys/kernel/debug/sched/numa_balancing/scan_size_mb" in out
    assert "sysctl -w vm.watermark_scale_factor=" in out
    assert "copy offload (RFC V3): worker threads = 8" in out
    assert "numab.hint_fault_ns=800: a cost in the model" in out


def test_damos_policy_writes_the_damo_json(run_cli, tmp_path):
    path = tmp_path / "damos.yaml"
    path.write_text("placement: damos\ndamos.quota_mbps: 200\n")
    out_file = tmp_path / "kdamonds.json"
    code, out, err = run_cli("policy", "kernel", path, "--damos-out", out_file)
    assert code == 0, err
    assert f"written to {out_file}: damo start --kdamonds {out_file}" in out
    doc = json.loads(out_file.read_text())
    hot = doc["kdamonds"][1]["contexts"][0]["schemes"][0]
    assert hot["action"] == "migrate_hot" and hot["quotas"]["sz_bytes"] == 200_000_000
    code, out, err = run_cli("policy", "kernel", path, "--json")
    assert json.loads(out)["damo"] == doc


def test_bad_policy_files_get_the_sentence_replay_gives(run_cli, tmp_path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("placement: numab\nnumab.rate_limt_mbps: 5\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("placement: [numab\n")
    for path in (unknown, broken):
        code, out, err = run_cli("policy", "kernel", path)
        assert code == 1 and not out
        assert str(path) in err and len(err.strip().splitlines()) == 1
        _, _, replay_err = run_cli("replay", "no-such-trace.mpt", "--policy", path)
        assert err == replay_err
    code, _, err = run_cli("policy", "kernel", unknown)
    assert "unknown.yaml:2: unknown parameter 'numab.rate_limt_mbps'; did you mean " \
           "numab.rate_limit_mbps" in err


def test_damos_out_is_checked_before_anything_is_printed(run_cli, tmp_path):
    path = tmp_path / "damos.yaml"
    path.write_text("placement: damos\n")
    code, out, err = run_cli("policy", "kernel", path, "--damos-out",
                             tmp_path / "missing" / "k.json")
    assert code == 1 and not out and "missing" in err
    assert not (tmp_path / "missing").exists()


def test_a_plugin_that_raises_is_one_sentence(migpolicy_exe, tmp_path):
    (tmp_path / "kraise.py").write_text(
        "from migpolicy.contract import hookimpl\n\n\n@hookimpl\n"
        "def migpolicy_kernel_settings(params):\n    raise ValueError('boom')\n")
    path = tmp_path / "p.yaml"
    path.write_text("placement: numab\n")
    proc = subprocess.run([migpolicy_exe, "-p", "kraise", "policy", "kernel", str(path)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1 and not proc.stdout
    assert "plugin 'kraise' raised ValueError in hook migpolicy_kernel_settings: boom" in \
        proc.stderr


def test_a_profile_with_one_node_is_refused(run_cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("placement: numab\n")
    code, out, err = run_cli("policy", "kernel", path, "--hw", "local")
    assert code == 1 and not out
    assert "--hw local: profile local has one node" in err


def test_help_teaches_with_examples(run_cli):
    code, out, _ = run_cli("policy", "kernel", "--help")
    assert code == 0 and "migpolicy policy kernel best.yaml" in out and "--damos-out" in out
