"""``migpolicy move --execute``: measured copies for cpu and mt, plain notes for dma and gpu."""

from __future__ import annotations

import importlib.util
import json

import pytest

SMALL = ("--hw", "local", "--bytes", "64M", "--folio", "2M")
GPU_LIBRARIES = [name for name in ("cupy", "torch") if importlib.util.find_spec(name)]


def move_json(run_cli, *args: str) -> dict:
    code, out, err = run_cli("move", *SMALL, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(("engine", "workers"), [("mt", 2), ("cpu", 1)])
def test_execute_measures_a_real_copy_next_to_the_model(run_cli, engine, workers) -> None:
    data = move_json(run_cli, "--engine", engine, "--workers", str(workers), "--execute")
    assert data["measured_s"] > 0
    assert data["measured_gbps"] == pytest.approx(64 * 2**20 / data["measured_s"] / 1e9)
    assert f"{engine}, {workers} thread" in data["execute_note"]
    assert data["modelled"] is True
    assert data["engine"] == engine and data["workers"] == workers
    assert data["bytes"] == 64 * 2**20 and data["folios"] == 32
    assert data["total_s"] > 0 and data["throughput_gbps"] > 0
    assert data["stages"]["copy"]["wall_s"] > 0


def test_without_execute_nothing_is_measured(run_cli) -> None:
    data = move_json(run_cli, "--engine", "mt", "--workers", "2")
    assert "measured_s" not in data and "execute_note" not in data


def test_execute_text_output_shows_measured_and_predicted(run_cli) -> None:
    # the worker count may come from the engine's own parameter instead of --workers
    code, out, err = run_cli("move", *SMALL, "--engine", "mt", "--param", "mt.threads=2",
                             "--execute")
    assert code == 0, err
    assert "measured copy:" in out and "predicted copy stage" in out
    assert "(mt, 2 threads)" in out


def test_auto_cannot_execute(run_cli) -> None:
    data = move_json(run_cli, "--engine", "auto", "--execute")
    assert data["measured_s"] is None
    assert "--execute needs a fixed engine" in data["execute_note"]


def test_dma_says_its_figures_are_modelled(run_cli) -> None:
    data = move_json(run_cli, "--engine", "dma", "--workers", "2", "--execute")
    assert data["measured_s"] is None
    assert "user space cannot drive a DMA engine" in data["execute_note"]
    assert "modelled" in data["execute_note"]
    assert data["throughput_gbps"] > 0
    code, _, err = run_cli("move", *SMALL, "--engine", "dma", "--workers", "2", "--execute")
    assert code == 0
    assert "user space cannot drive a DMA engine" in err


@pytest.mark.skipif(bool(GPU_LIBRARIES), reason=f"{', '.join(GPU_LIBRARIES)} installed here")
def test_gpu_without_a_gpu_is_skipped_with_a_note(run_cli) -> None:
    data = move_json(run_cli, "--engine", "gpu", "--workers", "1", "--execute")
    assert data["measured_s"] is None
    assert "gpu cannot run on this machine" in data["execute_note"]
    assert data["throughput_gbps"] > 0
