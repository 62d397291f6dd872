"""``migpolicy move`` reports the copy's cache effect (the engines' ``cache_resident`` figure)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from migpolicy.cli.move import cache_effect
from migpolicy.costs import CostTotals
from migpolicy.engines import CopyEngine

GIB = 1 << 30


def move_json(run_cli, *args: str) -> dict:
    code, out, err = run_cli("move", "--bytes", "64M", *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(("args", "resident"), [
    # cached stores leave the destination in the initiator's cache
    (("--engine", "cpu"), 1.0),
    (("--engine", "mt", "--workers", "4"), 1.0),
    # non-temporal stores write around it; an offload engine writes memory, not the cache
    (("--engine", "cpu", "--param", "cpu.store=nt"), 0.0),
    (("--engine", "mt", "--workers", "4", "--param", "mt.store=nt"), 0.0),
    (("--engine", "dma", "--workers", "4"), 0.0),
])
def test_json_reports_the_cache_effect(run_cli, args: tuple[str, ...], resident: float) -> None:
    data = move_json(run_cli, *args)
    assert data["cache_resident"] == resident
    engine = args[1]
    assert data["engines_used"][engine]["cache_resident"] == resident


def test_text_says_whether_the_destination_stays_cached(run_cli) -> None:
    code, out, err = run_cli("move", "--bytes", "64M", "--engine", "mt", "--workers", "2")
    assert code == 0, err
    assert "cache: the destination left resident" in out
    code, out, err = run_cli("move", "--bytes", "64M", "--engine", "mt", "--workers", "2",
                             "--param", "mt.store=nt")
    assert code == 0, err
    assert "cache: destination not cache-resident" in out and "next accesses miss" in out


def _engine(name: str, figure) -> CopyEngine:
    return CopyEngine(name=name, summary=name, worker_unit="thread",
                      max_workers=lambda hw: 1, cache_resident=figure)


def test_mixed_engines_weigh_by_the_bytes_each_copied() -> None:
    # 3 GiB copied with cached stores and 1 GiB offloaded: three quarters stay resident
    report = SimpleNamespace(engines={"cpu": CostTotals(bytes=3 * GIB),
                                      "dma": CostTotals(bytes=GIB)})
    run = SimpleNamespace(params={}, engines={"cpu": _engine("cpu", lambda p: 1.0),
                                              "dma": _engine("dma", lambda p: 0.0)})
    per_engine, overall = cache_effect(report, run)
    assert per_engine == {"cpu": 1.0, "dma": 0.0}
    assert overall == pytest.approx(0.75)


def test_an_engine_that_does_not_say_makes_the_whole_unknown() -> None:
    report = SimpleNamespace(engines={"cpu": CostTotals(bytes=GIB),
                                      "plugin": CostTotals(bytes=GIB)})
    run = SimpleNamespace(params={}, engines={"cpu": _engine("cpu", lambda p: 1.0),
                                              "plugin": _engine("plugin", None)})
    per_engine, overall = cache_effect(report, run)
    assert per_engine == {"cpu": 1.0, "plugin": None}
    assert overall is None
