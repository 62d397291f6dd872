"""The dsa engine: hand-computed pricing, scaling with engines and devices, batch descriptors."""

from __future__ import annotations

import json

import pytest

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.folios import make_folios
from migpolicy.hardware.profile import Provenance
from migpolicy.pipeline import run_pipeline
from migpolicy.testing.copy_engine import plan_of

M = 1 << 20
TEST = Provenance("test", "assumed", {"reason": "a hand-computed case"})


def price(hw, run, engines: int, count: int = 512, size: int = 2 * M):
    plan = plan_of(hw, make_folios(size, count, src=0, dst=1, pmd_size=hw.pmd_size), "dsa",
                   engines)
    return run.pm.hook.migpolicy_copy(batches=plan, engine="dsa", hw=hw, params=run.params,
                                      cache={})


@pytest.fixture(scope="module")
def spr():
    return build_context(hw="spr-dsa", params={"engine": "dsa", "workers": 4})


def test_a_hand_computed_batch(spr):
    # no saturation effects: one engine at 10 GB/s is the only finite cap that matters
    hw = spr.hw.with_values({"engines.dsa.device_gbps": 1e6, "memory.link_gbps": 1e6,
                             "engines.dsa.saturation": 50}, TEST)
    (row,) = price(hw, spr, engines=1, count=32)
    nbytes = 32 * 2 * M
    engine_s = 32 * 200e-9 + nbytes / 10e9          # per descriptor + bytes on one engine
    cpu_s = 32 * 50e-9 + 1 * 1000e-9 + 2000e-9       # 32 descriptors, one batch submission
    assert row["engine_s"] == pytest.approx(engine_s, rel=1e-3)
    assert row["cpu_s"] == pytest.approx(cpu_s, rel=1e-9)
    assert row["wall_s"] == pytest.approx(cpu_s + engine_s, rel=1e-3)


def test_engines_scale_until_a_device_port_saturates(spr):
    one, four, five = (512 * 2 * M / price(spr.hw, spr, e)[0]["wall_s"] / 1e9 for e in (1, 4, 5))
    assert four > 2 * one                  # four engines of one device share its 30 GB/s port
    assert four < 30                       # ... which caps them
    assert five > four                     # a fifth engine opens a second device


def test_batch_descriptors_amortise_submission(spr):
    small = spr.hw.with_values({"engines.dsa.batch_size": 1}, TEST)
    per_folio = price(small, spr, 4, size=4096)[0]["cpu_s"]
    batched = price(spr.hw, spr, 4, size=4096)[0]["cpu_s"]
    assert per_folio - batched == pytest.approx((512 - 16) * 1000e-9, rel=1e-6)


def test_dsa_moves_a_migration_end_to_end(run_cli):
    code, out, err = run_cli("move", "--hw", "spr-dsa", "--engine", "dsa", "--workers", "16",
                             "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["engines_used"]["dsa"]["workers"] == [16]
    reason = data["provenance"]["engines.dsa.device_gbps"]["reason"]
    assert "could not be consulted" in reason  # no number is claimed from the paper
    assert data["stages"]["copy"]["engine_s"] > 0


def test_profiles_without_dsa_refuse_it():
    with pytest.raises(InputError, match="has no dsa engine"):
        build_context(hw="zen3-epyc-ptdma", params={"engine": "dsa"})


def test_a_copy_within_one_node_is_capped_by_that_node(spr):
    run = build_context(hw="spr-dsa", params={"engine": "dsa", "workers": 16})
    report = run_pipeline(run.pm, make_folios(2 * M, 512, src=0, dst=0), run.hw, run.params)
    # reading and writing one socket's 307.2 GB/s: at most half of it copied
    assert report.bytes / report.stages["copy"].wall_s / 1e9 < 307.2 / 2
