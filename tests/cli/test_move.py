"""``migpolicy move`` through the installed console script, as a user runs it."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

PROFILES = ("zen3-epyc-ptdma", "gh200", "dram-cxl", "local")
#: A worker count every shipped profile allows for each engine (auto chooses its own).
ENGINES = {"cpu": 1, "mt": 2, "dma": 2, "gpu": 1, "auto": None}
#: The parameter ``--workers`` sets for each engine.
WORKER_PARAMS = {"mt": "mt.threads", "dma": "dma.channels", "gpu": "gpu.streams"}
STAGES = ("isolate", "batch", "copy", "remap", "account")
PROVENANCE_KINDS = {"measured", "fitted", "assumed"}


def move_json(run_cli, *args: str) -> dict:
    code, out, err = run_cli("move", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_one_sentence_error(code: int, err: str, *needles: str, status: int = 1) -> str:
    """A failure: the status, exactly one ``Error:`` line naming the needles, no traceback."""
    assert code == status, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], (needle, err)
    return errors[0]


def test_json_has_every_required_key(run_cli) -> None:
    data = move_json(run_cli, "--bytes", "1G", "--folio", "2M", "--engine", "mt",
                     "--workers", "8")
    for key in ("throughput_gbps", "total_s", "bytes", "folios", "engine", "workers", "hw",
                "stages", "accounting", "provenance"):
        assert key in data, key
    assert data["bytes"] == 1 << 30
    assert data["folios"] == 512
    assert data["engine"] == "mt" and data["workers"] == 8
    assert data["params"]["mt.threads"] == 8 and "workers" not in data["params"]
    assert data["hw"] == "zen3-epyc-ptdma"
    assert data["modelled"] is True
    assert set(data["stages"]) == set(STAGES)
    for stage in STAGES:
        assert {"wall_s", "cpu_s"} <= set(data["stages"][stage])
        assert data["stages"][stage]["wall_s"] >= 0
    assert data["throughput_gbps"] == pytest.approx(data["bytes"] / data["total_s"] / 1e9)
    for payer, charge in data["accounting"].items():
        assert isinstance(payer, str)
        assert set(charge) >= {"cpu_s", "wall_s", "engine_s"}
    # --param reaches the model: filling one CCD first is no faster than spreading
    assert data["params"]["mt.placement"] == "spread"
    fill = move_json(run_cli, "--bytes", "1G", "--folio", "2M", "--engine", "mt",
                     "--workers", "8", "--param", "mt.placement=fill")
    assert fill["params"]["mt.placement"] == "fill"
    assert fill["total_s"] >= data["total_s"]


@pytest.fixture(scope="module")
def matrix(migpolicy_exe: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``move --json`` of every engine on every shipped profile, run side by side."""
    env = dict(os.environ, MIGPOLICY_PROFILE_DIR=str(tmp_path_factory.mktemp("no-profiles")))
    for name in ("MIGPOLICY_PLUGINS", "MIGPOLICY_TRACE_HOOKS"):
        env.pop(name, None)

    def run(case: tuple[str, str]) -> subprocess.CompletedProcess:
        profile, engine = case
        workers = [] if ENGINES[engine] is None else ["--workers", str(ENGINES[engine])]
        return subprocess.run(
            [migpolicy_exe, "move", "--hw", profile, "--engine", engine, *workers,
             "--bytes", "256M", "--folio", "2M", "--json"],
            capture_output=True, text=True, env=env, timeout=120)

    cases = list(itertools.product(PROFILES, ENGINES))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(cases, pool.map(run, cases), strict=True))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_on_every_profile(matrix: dict, profile: str, engine: str) -> None:
    proc = matrix[profile, engine]
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["hw"] == profile
    assert data["engine"] == engine
    assert data["bytes"] == 256 << 20 and data["folios"] == 128
    assert data["total_s"] > 0 and data["throughput_gbps"] > 0
    total = sum(data["stages"][s]["wall_s"] for s in STAGES)
    assert total == pytest.approx(data["total_s"], rel=1e-9)
    cpu = sum(c["cpu_s"] for c in data["accounting"].values())
    assert cpu == pytest.approx(sum(data["stages"][s]["cpu_s"] for s in STAGES), rel=1e-9)
    used = set(data["engines_used"])
    if engine == "auto":
        # one 2 MiB batch shape: one engine, and one the profile has
        assert len(used) == 1 and used <= {"cpu", "mt", "dma", "gpu"}
        (name,) = used
        assert f"engines.{name}" in {".".join(p.split(".")[:2]) for p in data["provenance"]}
        if name in WORKER_PARAMS:
            assert data["engines_used"][name]["workers"][0] <= data["params"][WORKER_PARAMS[name]]
    else:
        assert used == {engine}
        assert data["workers"] == ENGINES[engine]
        if engine in WORKER_PARAMS:
            assert data["params"][WORKER_PARAMS[engine]] == ENGINES[engine]
    # provenance covers what priced it, and only that
    assert data["provenance"]
    for path, entry in data["provenance"].items():
        assert entry["kind"] in PROVENANCE_KINDS, path
        assert "value" in entry and "unit" in entry
    sections = {".".join(path.split(".")[:2]) for path in data["provenance"]}
    for name in used:
        assert f"engines.{name}" in sections
    for other in {"cpu", "mt", "dma", "gpu"} - used - {"cpu"}:
        assert f"engines.{other}" not in sections
    assert any(path.startswith("stages.isolate.") for path in data["provenance"])
    offloaded = used & {"dma", "gpu"}
    engine_s = sum(c["engine_s"] for c in data["accounting"].values())
    assert (engine_s > 0) == bool(offloaded)


def test_text_output_names_profile_and_says_modelled(run_cli) -> None:
    code, out, err = run_cli("move", "--hw", "dram-cxl", "--bytes", "64M", "--folio", "2M",
                             "--engine", "mt", "--workers", "4")
    assert code == 0, err
    assert "dram-cxl" in out
    assert "modelled" in out
    for stage in STAGES:
        assert re.search(rf"^\W*{stage}\b", out, flags=re.M), stage
    assert "GB/s" in out


def test_auto_shows_what_it_chose(run_cli) -> None:
    code, out, err = run_cli("move", "--engine", "auto", "--bytes", "16M", "--folio", "2M")
    assert code == 0, err
    assert re.search(r"auto → .*(cpu|mt|dma|gpu) x\d", out), out


def test_auto_keeps_within_the_worker_parameters(run_cli) -> None:
    data = move_json(run_cli, "--engine", "auto", "--bytes", "64M", "--folio", "64K",
                     "--param", "mt.threads=2", "--param", "dma.channels=3",
                     "--param", "gpu.streams=1")
    for name, used in data["engines_used"].items():
        limit = data["params"][WORKER_PARAMS[name]] if name in WORKER_PARAMS else 1
        assert max(used["workers"]) <= limit, (name, used)


def test_a_fixed_engine_without_workers_uses_its_parameter(run_cli) -> None:
    data = move_json(run_cli, "--engine", "mt", "--param", "mt.threads=6", "--bytes", "64M")
    assert data["workers"] == data["params"]["mt.threads"] == 6
    assert data["engines_used"]["mt"]["workers"] == [6]


def test_a_fixed_engine_without_workers_copies_with_one(run_cli) -> None:
    # as before the engines had worker parameters, and within the smallest profile (local)
    data = move_json(run_cli, "--hw", "local", "--engine", "mt", "--bytes", "4M")
    assert data["workers"] == 1 and data["engines_used"]["mt"]["workers"] == [1]


def test_reason_demotion_lets_auto_spare_cpu_time(run_cli) -> None:
    # on the RFC V2 kernel's fit, where mt is the fastest engine for 64 KiB folios
    args = ("--hw", "zen3-epyc-ptdma-6.14", "--engine", "auto", "--bytes", "32M", "--folio", "64K")
    sync = move_json(run_cli, *args)
    demote = move_json(run_cli, *args, "--reason", "demotion")
    assert (sync["reason"], demote["reason"]) == ("syscall", "demotion")
    assert set(sync["engines_used"]) == {"mt"} and set(demote["engines_used"]) == {"dma"}
    assert demote["stages"]["copy"]["cpu_s"] < sync["stages"]["copy"]["cpu_s"]
    assert demote["stages"]["copy"]["wall_s"] > sync["stages"]["copy"]["wall_s"]


def test_accounting_policies_in_json(run_cli) -> None:
    data = move_json(run_cli, "--engine", "mt", "--workers", "8", "--account", "kthread")
    assert set(data["accounting"]) == {"0", "kthread"}
    assert data["accounting"]["kthread"]["cpu_s"] > 0
    assert data["params"]["account.policy"] == "kthread"


def test_profile_given_as_a_file(run_cli, profile_dir) -> None:
    path = profile_dir("gh200", filename="copy.yaml")
    data = move_json(run_cli, "--hw", str(path), "--folio", "2M", "--bytes", "64M")
    assert data["hw"] == "gh200"


def test_execute_dma_says_it_is_modelled(run_cli) -> None:
    data = move_json(run_cli, "--engine", "dma", "--workers", "2", "--bytes", "4M",
                     "--execute")
    assert data["measured_s"] is None
    assert "modelled" in data["execute_note"]


def test_execute_cpu_measures_a_real_copy(run_cli) -> None:
    data = move_json(run_cli, "--hw", "local", "--engine", "cpu", "--bytes", "4M",
                     "--folio", "64K", "--execute")
    assert data["measured_s"] > 0
    assert data["measured_gbps"] > 0


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--bytes", "3X"), ("--bytes", "-4K"), ("--folio", "0")],
)
def test_malformed_size_is_a_usage_error(run_cli, option: str, value: str) -> None:
    code, out, err = run_cli("move", option, value)
    assert_one_sentence_error(code, err, option, status=2)
    assert out == ""


def test_unknown_engine(run_cli) -> None:
    code, _, err = run_cli("move", "--engine", "warp")
    line = assert_one_sentence_error(code, err, "--engine warp", "unknown copy engine")
    for known in ("cpu", "mt", "dma", "gpu", "auto"):
        assert known in line


@pytest.mark.parametrize(
    ("args", "needles", "status"),
    [(("--engine", "mt", "--workers", "1000"), ("--workers 1000", "at most 64 threads"), 1),
     (("--engine", "gpu", "--workers", "64"), ("--workers 64", "stream"), 1),
     (("--engine", "mt", "--workers", "0"), ("--workers", "0"), 2),
     (("--engine", "auto", "--workers", "4"), ("--workers", "fixed engine", "mt.threads"), 1)],
)
def test_impossible_worker_count(run_cli, args: tuple[str, ...], needles: tuple[str, ...],
                                 status: int) -> None:
    code, _, err = run_cli("move", *args)
    assert_one_sentence_error(code, err, *needles, status=status)


def test_bytes_not_a_multiple_of_folio(run_cli) -> None:
    code, _, err = run_cli("move", "--bytes", "3M", "--folio", "2M")
    assert_one_sentence_error(code, err, "--bytes", "--folio", "multiple")


def test_unknown_param_key(run_cli) -> None:
    code, _, err = run_cli("move", "--param", "mt.placment=fill")
    assert_one_sentence_error(code, err, "unknown parameter", "mt.placment",
                              "did you mean mt.placement")


def test_bad_param_value_and_form(run_cli) -> None:
    code, _, err = run_cli("move", "--param", "mt.placement=zigzag")
    assert_one_sentence_error(code, err, "mt.placement", "zigzag")
    code, _, err = run_cli("move", "--param", "novalue")
    assert_one_sentence_error(code, err, "KEY=VALUE", status=2)


def test_node_not_in_profile(run_cli) -> None:
    code, _, err = run_cli("move", "--src", "7")
    assert_one_sentence_error(code, err, "--src", "no node 7", "zen3-epyc-ptdma")
    code, _, err = run_cli("move", "--hw", "local", "--dst", "1")
    assert_one_sentence_error(code, err, "--dst", "no node 1", "local")


def test_unknown_and_missing_profiles(run_cli, tmp_path) -> None:
    code, _, err = run_cli("move", "--hw", "nope")
    assert_one_sentence_error(code, err, "--hw nope", "zen3-epyc-ptdma")
    code, _, err = run_cli("move", "--hw", str(tmp_path / "missing.yaml"))
    assert_one_sentence_error(code, err, "missing.yaml")


def test_bad_profile_file(run_cli, profile_dir) -> None:
    path = profile_dir("local", lambda t: re.sub(r"^(\s+thread_gbps:).*$", r"\1 -1", t,
                                                 count=1, flags=re.M), filename="bad.yaml")
    code, _, err = run_cli("move", "--hw", str(path))
    assert_one_sentence_error(code, err, f"{path}:", "memory.thread_gbps", "positive")


def test_engine_the_profile_lacks(run_cli, profile_dir) -> None:
    def no_dma(text: str) -> str:
        return re.sub(r"^(\s+)dma:\s*\n(?:\1\s+.*\n)+", "", text, count=1, flags=re.M)

    path = profile_dir("zen3-epyc-ptdma", no_dma, filename="nodma.yaml")
    code, _, err = run_cli("move", "--hw", str(path), "--engine", "dma", "--workers", "2")
    assert_one_sentence_error(code, err, "dma")
    data = move_json(run_cli, "--hw", str(path), "--engine", "auto", "--folio", "2M")
    assert "dma" not in data["engines_used"]


# -- exact inputs: one way to give each value, errors under the option typed ----------------


@pytest.mark.parametrize(("args", "needles"), [
    (("--engine", "mt", "--param", "engine=dma"),
     ("--engine mt and --param engine=dma both set engine; give it once",)),
    (("--workers", "8", "--param", "workers=8"), ("--workers 8 and --param workers=8",)),
    (("--load", "0.5", "--param", "system.load=0.2"), ("--load 0.5 and --param system.load",)),
    (("--param", "workers=2", "--param", "workers=4"), ("workers is given twice",)),
    (("--param", "workers="), ("workers= has no value",)),
    (("--param", "engine=cpu\nmt"), ("'engine=cpu\\nmt' holds a control character",)),
])
def test_a_value_given_two_ways_is_a_usage_error(run_cli, args, needles) -> None:
    code, out, err = run_cli("move", *args, "--json")
    assert out == ""
    assert_one_sentence_error(code, err, *needles, status=2)


def test_a_param_alone_is_not_overridden_by_an_option_default(run_cli) -> None:
    data = move_json(run_cli, "--param", "workers=8", "--param", "engine=mt")
    assert data["engine"] == "mt" and data["workers"] == 8


@pytest.mark.parametrize(("args", "needles"), [
    (("--engine", "mt", "--workers", "5000"), ("--workers expects an integer", "got 5000")),
    (("--load", "5"), ("--load expects a number in [0, 0.99]",)),
    (("--engine", "cpu", "--workers", "3"), ("allows only 1 thread",)),
    (("--hw", ""), ("--hw: expected a value, got an empty string",)),
    (("--bytes", "99999999999999999999T"), ("larger than the largest size accepted",)),
])
def test_errors_name_the_option_typed(run_cli, args, needles) -> None:
    code, out, err = run_cli("move", *args, "--json")
    assert out == ""
    assert "parameter workers" not in err and "parameter system.load" not in err
    usage = args[0] in ("--hw", "--bytes")
    assert_one_sentence_error(code, err, *needles, status=2 if usage else 1)


def test_sizes_are_priced_exactly(run_cli) -> None:
    """256 GiB less 4K: the folio count must be its exact quotient, with no float between."""
    nbytes = (256 << 30) - 4096  # what node 0 of the default profile holds, less a page
    data = move_json(run_cli, "--bytes", str(nbytes), "--folio", "4K")
    assert data["bytes"] == nbytes and data["folios"] == nbytes // 4096


def test_one_folio_is_singular_and_a_file_profile_hint_shows_its_path(run_cli,
                                                                      profile_dir) -> None:
    path = profile_dir("gh200", filename="elsewhere.yaml")
    code, out, err = run_cli("move", "--hw", path, "--bytes", "2M", "--folio", "2M")
    assert code == 0, err
    assert "in 1 folio of 2MiB" in out
    assert f"see `migpolicy hw show {path}`" in out
    shown, _, err = run_cli("hw", "show", path)
    assert shown == 0, err
