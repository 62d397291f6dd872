"""Calibration: fitting the measured copies, the profile written (and not written), NUMA."""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from migpolicy import execute
from migpolicy.context import build_context
from migpolicy.errors import ConfigError, InputError
from migpolicy.hardware import calibrate as cal
from migpolicy.hardware import measure as measuring
from migpolicy.hardware import numa
from migpolicy.hardware.fit import FitResult
from migpolicy.hardware.locations import shipped_dir, user_dir
from migpolicy.hardware.measure import Experiment, Settings, measure, plan
from migpolicy.hardware.profile import load_profile
from migpolicy.hardware.registry import find_profile
from migpolicy.hardware.tables import read_table

K, M = 1 << 10, 1 << 20
#: A calibration small enough for a unit test: two sizes, two counts, two samples.
TINY = Settings(engines=("cpu", "mt"), sizes=(64 * K, 256 * K), counts=(1, 4), max_bytes=M,
                samples=2, threads=(1, 2))


@pytest.fixture
def local_ctx():
    """Plugins, parameters and the shipped (uncalibrated) local profile."""
    return build_context(hw=str(shipped_dir() / "local.yaml"))


def run_calibration(local_ctx, out: Path, settings: Settings = TINY, **kw):
    return cal.calibrate(local_ctx.pm, local_ctx.hw, local_ctx.params, settings, out,
                         command="migpolicy hw calibrate --test", **kw)


def test_calibrate_writes_a_measured_local_profile_and_its_table(local_ctx, tmp_path) -> None:
    out = tmp_path / "local.yaml"
    result = run_calibration(local_ctx, out)
    profile = load_profile(out)
    assert profile.name == "local"
    prov = profile.provenances[cal.PROVENANCE_ID]
    assert prov.kind == "measured"
    assert prov.detail["command"] == "migpolicy hw calibrate --test"
    assert prov.detail["host"] and prov.detail["date"]
    values = {path: v for path, v, _ in profile.values()}
    for fitted in result.free:
        assert values[fitted].provenance.id == cal.PROVENANCE_ID
    nodes = numa.detect_nodes()
    cap = "memory.link_gbps" if len(nodes) > 1 else "nodes.0.bandwidth_gbps"
    assert cap in result.free or any(cap in note for note in result.notes)
    assert profile.kernel == (platform.release() or None)  # the kernel it was measured on
    assert ("memory.ccd_gbps" in result.free) == (nodes[0].ccds > 1)
    assert profile.nodes[0]["ccds"] == nodes[0].ccds
    assert values["nodes.0.ccds"].provenance.id == cal.PROVENANCE_ID
    assert profile.p("engines.mt.max_threads") == os.cpu_count()
    assert values["stages.isolate.folio_ns"].provenance.kind == "assumed"  # not measurable here
    assert result.fit.converged and np.isfinite(result.fit.predicted).all()
    rows = read_table(result.table_path, ["cpu", "mt"])
    assert result.table_path == tmp_path / "local.csv" and len(rows) == len(result.measurements)


def test_the_default_output_is_the_local_profile_that_hw_local_finds(local_ctx) -> None:
    out = user_dir() / "local.yaml"
    run_calibration(local_ctx, out)
    found = find_profile(local_ctx.pm, "local")
    assert found.path == out
    assert found.provenances[cal.PROVENANCE_ID].kind == "measured"


def test_a_value_stuck_at_a_bound_keeps_the_base_value(local_ctx, tmp_path) -> None:
    calls = []

    def stuck_once(predict, hw, rows, free, provenance, **kw) -> FitResult:
        calls.append(list(free))
        stuck = {free[0]: 500.0} if len(calls) == 1 else {}
        return FitResult(profile=hw, observed=rows["throughput_gbps"],
                         predicted=rows["throughput_gbps"], converged=True, message="ok",
                         evaluations=3, values={name: 1.0 for name in free}, at_bound=stuck)

    result = run_calibration(local_ctx, tmp_path / "local.yaml", fit=stuck_once)
    first, second = calls
    assert second == first[1:]  # refitted without the stuck parameter
    assert any(first[0] in note and "kept at the base profile's value" in note
               for note in result.notes)
    assert first[0] not in result.free
    assert result.profile.value(first[0]) == local_ctx.hw.value(first[0])


def test_a_fit_that_does_not_converge_writes_nothing(local_ctx, tmp_path) -> None:
    def stuck(predict, hw, rows, free, provenance, **kw) -> FitResult:
        return FitResult(profile=hw, observed=rows["throughput_gbps"],
                         predicted=rows["throughput_gbps"], converged=False,
                         message="the maximum number of evaluations is exceeded", evaluations=9)

    out = tmp_path / "local.yaml"
    with pytest.raises(ConfigError, match=r"did not converge.*no profile written"):
        run_calibration(local_ctx, out, fit=stuck)
    assert list(tmp_path.iterdir()) == []


def test_unknown_engines_and_an_empty_grid_are_refused(local_ctx, tmp_path) -> None:
    with pytest.raises(InputError, match="--engines: calibration measures cpu, mt and gpu, "
                                         "not dma"):
        run_calibration(local_ctx, tmp_path / "x.yaml", Settings(engines=("cpu", "dma")))
    with pytest.raises(InputError, match="nothing to measure"):
        run_calibration(local_ctx, tmp_path / "x.yaml", Settings(sizes=(4 * K,), counts=(1,)))


def test_gpu_is_skipped_with_a_note_when_no_gpu_is_seen(local_ctx, tmp_path, monkeypatch):
    """The CPU copies are a stand-in (2 us per folio, 10 GB/s): six real measurements of one
    sample each on a shared machine sometimes gave a fit that did not converge, and what is
    checked here is the GPU's note."""
    monkeypatch.setattr(execute, "gpu_backend", lambda: None)
    monkeypatch.setattr(measuring._CopyBench, "seconds",
                        lambda self, exp, repeats: 2e-6 * exp.count + exp.nbytes / 10e9)
    settings = Settings(engines=("cpu", "gpu"), sizes=(64 * K, 256 * K), counts=(4, 8, 16),
                        samples=1)
    result = run_calibration(local_ctx, tmp_path / "local.yaml", settings)
    assert any(n.startswith("gpu skipped") for n in result.notes)
    assert {m.experiment.engine for m in result.measurements} == {"cpu"}
    if len(numa.detect_nodes()) < 2:
        assert any(n.startswith("move_pages skipped") for n in result.notes)


def test_gpu_copies_are_measured_through_execute_and_fitted(local_ctx, tmp_path, monkeypatch):
    """A stand-in GPU (10 us launch, 20 GB/s) checks the wiring: the fit recovers it."""
    calls = []

    def fake_copy(nbytes: int, folio_size: int, streams: int, repeats: int = 5) -> float:
        calls.append((nbytes, folio_size, streams))
        return 10e-6 + nbytes / 20e9

    monkeypatch.setattr(execute, "gpu_backend", lambda: "fake")
    monkeypatch.setattr(execute, "gpu_copy_folios", fake_copy)
    settings = Settings(engines=("gpu",), sizes=(64 * K, 2 * M), counts=(1, 8, 64),
                        max_bytes=256 * M, samples=1)
    result = run_calibration(local_ctx, tmp_path / "local.yaml", settings)
    assert {s for _, _, s in calls} == set(cal.GPU_STREAMS)
    assert {"engines.gpu.launch_ns", "engines.gpu.link_gbps"} <= set(result.free)
    np.testing.assert_allclose(result.fit.predicted, result.fit.observed, rtol=0.05)
    assert result.profile.p("engines.gpu.streams") == max(cal.GPU_STREAMS)


def test_free_parameters_follow_the_topology() -> None:
    hw = load_profile(shipped_dir() / "local.yaml")
    copies = [Experiment("cpu", 4096, 16, 1), Experiment("mt", 4096, 16, 2)]
    free, ties = cal._free_parameters(copies, hw, multi_node=False)
    assert "nodes.0.bandwidth_gbps" in free and ties == {"memory.ccd_gbps":
                                                         "nodes.0.bandwidth_gbps"}
    assert "engines.mt.thread_start_ns" in free
    moves = [*copies, Experiment("cpu", 4096, 512, 1, scope="move")]
    free, ties = cal._free_parameters(moves, hw, multi_node=True)
    assert "memory.link_gbps" in free and "nodes.0.bandwidth_gbps" not in free
    assert "stages.isolate.folio_ns" in free
    assert ties["stages.remap.folio_ns"] == "stages.isolate.folio_ns"


# -- numa.py -------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_sysfs(root: Path) -> tuple[Path, Path]:
    """Two nodes; node 0: CPUs 0-7 in two LLC domains, SMT 2; node 1: CPU-less (CXL)."""
    nodes, cpus = root / "node", root / "cpu"
    _write(nodes / "node0" / "cpulist", "0-7\n")
    _write(nodes / "node0" / "meminfo", "Node 0 MemTotal:       16384 kB\n")
    _write(nodes / "node1" / "cpulist", "\n")
    _write(nodes / "node1" / "meminfo", "Node 1 MemTotal:       32768 kB\n")
    for cpu in range(8):
        llc = "0-3" if cpu < 4 else "4-7"
        core = cpu // 2
        _write(cpus / f"cpu{cpu}" / "cache" / "index3" / "level", "3\n")
        _write(cpus / f"cpu{cpu}" / "cache" / "index3" / "shared_cpu_list", llc)
        _write(cpus / f"cpu{cpu}" / "cache" / "index3" / "size", "32768K\n")
        _write(cpus / f"cpu{cpu}" / "cache" / "index0" / "level", "1\n")
        _write(cpus / f"cpu{cpu}" / "topology" / "thread_siblings_list",
               f"{2 * core}-{2 * core + 1}")
    return nodes, cpus


def test_nodes_and_topology_are_read_from_sysfs(tmp_path) -> None:
    nodes, cpus = fake_sysfs(tmp_path)
    found = numa.detect_nodes(nodes, cpus)
    assert [n.id for n in found] == [0, 1]
    assert found[0] == numa.NodeInfo(0, tuple(range(8)), 16 << 20, ccds=2, cores_per_ccd=2, smt=2)
    assert found[1].cpus == () and found[1].ccds == 0 and found[1].memory_bytes == 32 << 20
    assert numa.llc_bytes(cpus) == 32 << 20


def test_without_sysfs_the_machine_is_one_node(tmp_path) -> None:
    found = numa.detect_nodes(tmp_path / "missing", tmp_path / "missing")
    assert len(found) == 1 and found[0].id == 0
    assert set(found[0].cpus) == os.sched_getaffinity(0)
    assert numa.llc_bytes(tmp_path / "missing") == 32 << 20


def test_parse_cpulist() -> None:
    assert numa.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert numa.parse_cpulist("") == []


def test_move_pages_reports_and_places_pages_of_this_process() -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    buffer = np.ones(4 * page, dtype=np.uint8)
    addresses = numa.page_addresses(buffer)
    assert len(addresses) in (3, 4) and all(a % page == 0 for a in addresses)
    node = numa.detect_nodes()[0].id
    try:
        where = numa.move_pages(addresses, None)
    except OSError as exc:
        pytest.skip(f"move_pages is not allowed here: {exc}")
    assert list(where) == [node] * len(addresses)
    assert numa.place(buffer, node) >= 0
    with pytest.raises(OSError, match="move_pages"):
        numa.place(buffer, 4095)


def _move_pages_allowed() -> bool:
    try:
        numa.move_pages(numa.page_addresses(np.ones(2 * os.sysconf("SC_PAGE_SIZE"), np.uint8)),
                        None)
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _move_pages_allowed(), reason="move_pages is not allowed here")
def test_the_two_node_paths_run_with_node_0_standing_in_for_both() -> None:
    """Placement, thread affinity and move_pages() timing, as on a two-node machine."""
    here = numa.detect_nodes()[0]
    settings = replace(TINY, engines=("cpu",), samples=2)
    experiments = plan(settings, gpu=False, nodes=2)
    moves = [e for e in experiments if e.scope == "move"]
    assert moves
    before = os.sched_getaffinity(0)
    results = measure(experiments, settings, nodes=[here, here])
    assert all(len(m.seconds) == 2 and min(m.seconds) > 0 for m in results)
    assert os.sched_getaffinity(0) == before  # the workers' pinning is undone


def test_a_second_node_that_refuses_pages_leaves_one_node() -> None:
    here = numa.detect_nodes()[0]
    notes: list[str] = []
    nowhere = replace(here, id=4095)
    assert cal._usable_nodes([here, nowhere], notes) == [here]
    assert notes and notes[0].startswith("move_pages failed")


# -- destinations: checked before measuring, and nothing measured is lost -------------------


def test_a_bad_destination_fails_before_anything_is_measured(local_ctx, tmp_path: Path,
                                                             monkeypatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("measured although the destination is bad")

    monkeypatch.setattr(cal, "measure", never)
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "missing" / "local.yaml", tmp_path / "afile" / "local.yaml",
                tmp_path):
        with pytest.raises(InputError):
            run_calibration(local_ctx, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_destination_lost_after_measuring_keeps_the_results_elsewhere(local_ctx,
                                                                        tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "going"
    folder.mkdir()

    class VanishingDestination:
        """Progress that removes the destination folder when fitting starts."""

        def phase(self, name: str, total: int | None) -> None:
            if name == "fitting":
                shutil.rmtree(folder)

        def advance(self, completed: int | None = None) -> None:
            pass

        def note(self, message: str) -> None:
            pass

    with pytest.raises(InputError, match=r"were saved in (\S+) instead$") as caught:
        run_calibration(local_ctx, folder / "mine.yaml", progress=VanishingDestination())
    rescue = Path(str(caught.value).rsplit(" saved in ", 1)[1].split(" instead")[0])
    try:
        assert sorted(p.name for p in rescue.iterdir()) == ["mine.csv", "mine.yaml"]
        rows = read_table(rescue / "mine.csv", ["cpu", "mt"])
        assert len(rows) >= len(plan(TINY, gpu=False, nodes=1))
        assert load_profile(rescue / "mine.yaml").name == "local"
    finally:
        shutil.rmtree(rescue)
