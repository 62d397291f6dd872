"""The sdxi engine: one doorbell per batch, functions in parallel, a device cap."""

from __future__ import annotations

import json

import pytest

from migpolicy.context import build_context
from migpolicy.folios import make_folios
from migpolicy.testing.copy_engine import plan_of

M = 1 << 20


@pytest.fixture(scope="module")
def cxl():
    return build_context(hw="dram-cxl", params={"engine": "sdxi", "workers": 1})


def row(run, functions: int, count: int = 512, size: int = 2 * M):
    plan = plan_of(run.hw, make_folios(size, count, src=0, dst=0, pmd_size=run.hw.pmd_size),
                   "sdxi", functions)
    return run.pm.hook.migpolicy_copy(batches=plan, engine="sdxi", hw=run.hw,
                                      params=run.params, cache={})[0]


def test_cpu_pays_descriptors_and_one_doorbell_per_batch(cxl):
    # 512 descriptors x 40 ns + one doorbell (300 ns) + one completion (2 us)
    assert row(cxl, 4)["cpu_s"] == pytest.approx((512 * 40 + 300 + 2000) * 1e-9)


def test_functions_scale_until_the_device_caps(cxl):
    gbps = {f: 512 * 2 * M / row(cxl, f)["wall_s"] / 1e9 for f in (1, 2, 8)}
    assert gbps[1] < 12 and gbps[2] > 1.6 * gbps[1]
    assert gbps[8] < 50  # the device's 50 GB/s
    assert row(cxl, 8)["engine_s"] > 0 and row(cxl, 8)["cpu_s"] < row(cxl, 8)["wall_s"]


def test_sdxi_moves_a_migration_end_to_end(run_cli):
    code, out, err = run_cli("move", "--hw", "dram-cxl", "--engine", "sdxi", "--workers", "8",
                             "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["provenance"]["engines.sdxi.total_gbps"]["kind"] == "assumed"
