"""``migpolicy trace``: convert, gen, info, plot and formats as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from migpolicy.traces import open_trace
from tests.traces.conftest import DAMO, DATA

KEYS = {"events", "accesses", "distinct_pages", "footprint_bytes", "reads", "writes", "modifies",
        "duration_ns", "wss_bytes"}


def test_convert_then_info_agree(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "sort.parquet"
    code, stdout, stderr = run_cli("trace", "convert", DATA / "sort.lackey.xz", out, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["format"] == "lackey" and summary["accesses"] == 268609
    infos = []
    for path in (DATA / "sort.lackey.xz", out):
        code, stdout, stderr = run_cli("trace", "info", path, "--json", "--epoch", "100us")
        assert code == 0, stderr
        infos.append(json.loads(stdout))
    assert KEYS <= set(infos[0]) and set(infos[0]["wss_bytes"]) == {"avg", "p50", "p90", "p99",
                                                                   "max"}
    assert infos[0] == {**infos[1], "command": ""}
    assert infos[1]["command"].startswith("migpolicy trace convert ")
    assert (infos[0]["reads"], infos[0]["writes"], infos[0]["modifies"]) == (173289, 92268, 3052)
    code, stdout, _ = run_cli("trace", "info", out)
    assert code == 0 and "hottest pages" in stdout and "0x1fff000000" in stdout


@pytest.mark.skipif(not (DAMO / "damon.data").is_file(), reason="no shared DAMON data")
def test_info_of_a_damon_recording(run_cli) -> None:
    code, stdout, stderr = run_cli("trace", "info", DAMO / "damon.data", "--page-size", "2M",
                                   "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["format"] == "damo" and data["epoch"] == "snapshot" and data["epochs"] > 400
    assert 0 < data["wss_bytes"]["p50"] <= data["wss_bytes"]["max"] <= data["footprint_bytes"]


def test_gen_is_deterministic_and_plots(run_cli, tmp_path: Path) -> None:
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for path in paths:
        code, stdout, stderr = run_cli("trace", "gen", "phases", "--out", path, "--events", "200K",
                                       "--pages", "5000", "--seed", "3", "--param", "phases=3")
        assert code == 0, stderr
        assert "200,000 events" in stdout
    a, b = (np.concatenate(list(open_trace(p).chunks())) for p in paths)
    assert np.array_equal(a, b)
    png = tmp_path / "phases.png"
    code, stdout, stderr = run_cli("trace", "plot", paths[0], "--out", png, "--time-bins", "100")
    assert code == 0, stderr
    assert png.read_bytes()[:4] == b"\x89PNG" and "mapping" in stdout


def test_formats_lists_formats_and_generators(run_cli) -> None:
    code, stdout, _ = run_cli("trace", "formats", "--json")
    data = json.loads(stdout)
    assert {f["name"] for f in data["formats"]} == {"native", "lackey", "damo", "damon-perf",
                                                    "perf", "champsim"}
    assert {g["name"] for g in data["generators"]} == {"zipf", "phases", "scan", "gups",
                                                       "tenants"}
    code, stdout, _ = run_cli("trace", "formats")
    assert code == 0 and "instructions=False" in stdout


@pytest.mark.parametrize(("args", "message"), [
    (["trace", "convert", "{garbage}", "{tmp}/out.parquet"],
     "garbage.lackey: line 6: expected a lackey line"),
    (["trace", "convert", "{data}/sort.lackey.xz", "{tmp}"], "is a directory; expected a file"),
    (["trace", "convert", "{data}/sort.lackey.xz", "{tmp}/no/out.parquet"], "does not exist"),
    (["trace", "info", "{tmp}"], "is a directory; expected a trace file"),
    (["trace", "info", "{data}/sort.lackey.xz", "--from", "damo"], "line 1: not valid damo"),
    (["trace", "info", "{data}/sort.lackey.xz", "--epoch", "soon"], "--epoch 'soon': expected"),
    (["trace", "gen", "spiral", "--out", "{tmp}/x.parquet"], "unknown trace generator 'spiral'"),
])
def test_errors_are_one_line(run_cli, tmp_path: Path, args: list[str], message: str) -> None:
    garbage = tmp_path / "garbage.lackey"
    garbage.write_text(" L 1000,4\n" * 5 + "segmentation fault\n")
    argv = [a.format(tmp=tmp_path, data=DATA, garbage=garbage) for a in args]
    code, _, stderr = run_cli(*argv)
    assert code == 1 and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.lackey"]


def test_interrupted_gen_leaves_nothing(migpolicy_exe: str, tmp_path: Path) -> None:
    out = tmp_path / "big.parquet"
    proc = subprocess.Popen([migpolicy_exe, "trace", "gen", "gups", "--out", str(out),
                             "--events", "2G"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()), "no temporary output appeared"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


PLUGIN = '''
import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import TraceFormat, empty_events


def read_csv(source):
    table = np.loadtxt(source.stream, dtype=np.int64, delimiter=",", ndmin=2)
    events = empty_events(len(table))
    events["t_ns"], events["page"] = table[:, 0], table[:, 1] // source.page_size
    yield events


@hookimpl
def migpolicy_trace_formats():
    return [TraceFormat("csvtrace", "t_ns,address per line", lambda h: h.startswith(b"#csvtrace"),
                        read_csv)]
'''


def test_plugin_adds_a_format(migpolicy_exe: str, tmp_path: Path) -> None:
    (tmp_path / "csvtrace_plugin.py").write_text(PLUGIN)
    trace = tmp_path / "accesses.log"
    trace.write_text("#csvtrace\n" + "".join(f"{i},{(i % 7) * 4096}\n" for i in range(100)))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([migpolicy_exe, "-p", "csvtrace_plugin", "trace", "info", str(trace),
                             "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format"] == "csvtrace" and data["events"] == 100 and data["distinct_pages"] == 7


@pytest.mark.skipif(not (DAMO / "damon.data").is_file(), reason="no shared DAMON data")
def test_damon_recordings_convert_with_their_region_totals(run_cli, tmp_path: Path) -> None:
    import zlib

    for name in ("damon.data", "damon.data.json_compressed"):
        records = json.loads(zlib.decompress((DAMO / name).read_bytes()))
        total = sum(r["nr_accesses"]["samples"] * (int(r["end"].replace(",", ""))
                                                   - int(r["start"].replace(",", "")))
                    for s in records[0]["snapshots"] for r in s["regions"])
        out = tmp_path / f"{name}.parquet"
        code, stdout, stderr = run_cli("trace", "convert", DAMO / name, out, "--page-size", "1M",
                                       "--json")
        assert code == 0, stderr
        assert json.loads(stdout)["accesses"] == pytest.approx(total / (1 << 20), rel=1e-12)
        assert open_trace(out).meta.page_size == 1 << 20


def test_instructions_flag_counts_fetches(run_cli) -> None:
    import gzip

    with gzip.open(DATA / "true.lackey.gz", "rt") as handle:
        fetches = sum(1 for line in handle if line.startswith("I  "))
    plain = json.loads(run_cli("trace", "info", DATA / "true.lackey.gz", "--json")[1])
    code, stdout, stderr = run_cli("trace", "info", DATA / "true.lackey.gz", "--instructions",
                                   "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["reads"] == plain["reads"] + fetches
