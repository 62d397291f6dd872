"""The cpu and mt engines' store modes: bandwidth, cache effect, provenance."""

from __future__ import annotations

import json

import pytest

from migpolicy.context import build_context
from migpolicy.pipeline import price_uniform

M = 1 << 20


def copy_gbps(engine: str, workers: int, store: str, hw: str = "zen3-epyc-ptdma") -> float:
    run = build_context(hw=hw, params={"engine": engine, "workers": workers,
                                       f"{engine}.store": store})
    report = price_uniform(run.pm, 2 * M, 512, run.hw, run.params, src=0, dst=1)
    return report.bytes / report.stages["copy"].wall_s / 1e9


@pytest.mark.parametrize(("engine", "workers"), [("cpu", 1), ("mt", 4)])
def test_non_temporal_stores_copy_faster_by_the_saved_read_for_ownership(engine, workers):
    # cached: read source + read destination for ownership + write = 3 transfers; nt: 2
    ratio = copy_gbps(engine, workers, "nt") / copy_gbps(engine, workers, "cached")
    assert ratio == pytest.approx(3 / 2, rel=0.01)


def test_engines_report_what_their_copy_leaves_in_the_cache():
    run = build_context()
    engines = run.engines
    assert engines["cpu"].cache_resident({"cpu.store": "cached"}) == 1.0
    assert engines["cpu"].cache_resident({"cpu.store": "nt"}) == 0.0
    assert engines["mt"].cache_resident({"mt.store": "nt"}) == 0.0
    assert engines["mt"].cache_resident({"mt.store": "cached"}) == 1.0
    assert engines["dma"].cache_resident({}) == 0.0
    assert engines["gpu"].cache_resident({}) == 0.0


def test_store_mode_runs_end_to_end_with_provenance(run_cli):
    code, out, err = run_cli("move", "--folio", "2M", "--engine", "mt", "--workers", "8",
                             "--param", "mt.store=nt", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["params"]["mt.store"] == "nt"
    nt = data["provenance"]["memory.nt_factor"]
    assert nt["kind"] == "assumed" and "read the destination for ownership" in nt["reason"]
    code, _, err = run_cli("move", "--engine", "cpu", "--param", "cpu.store=fast")
    assert code == 1 and "cpu.store" in err and "Traceback" not in err
