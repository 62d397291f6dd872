"""The dma engine: descriptor work and data movement, added or overlapped (`overlap`)."""

from __future__ import annotations

import pytest

from migpolicy.context import build_context
from migpolicy.folios import make_folios
from migpolicy.hardware.model import soft_min
from migpolicy.pipeline import price_uniform
from migpolicy.testing.copy_engine import plan_of

K, M = 1 << 10, 1 << 20


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma", params={"engine": "dma", "workers": 1})


def channel_s(run, hw, channels: int, size: int, count: int = 512) -> float:
    """The engine time of one batch divided by its active channels: one channel's time."""
    plan = plan_of(hw, make_folios(size, count, src=0, dst=1, pmd_size=hw.pmd_size),
                   "dma", channels)
    cost = run.pm.hook.migpolicy_copy(batches=plan, engine="dma", hw=hw, params=run.params,
                                      cache={})[0]
    return cost["engine_s"] / min(channels, count)


def hand_parts(hw, channels: int, size: int, count: int = 512) -> tuple[float, float]:
    """Descriptor time and data time of one channel, from the profile's values by hand."""
    p = hw.p
    pages = size // hw.base_page if size < hw.pmd_size else 0
    descriptor = count * (p("engines.dma.desc_ns") + pages * p("engines.dma.pte_ns")) * 1e-9
    engines = -(-channels // int(p("engines.dma.channels_per_engine")))
    bandwidth = soft_min([channels * p("engines.dma.channel_gbps"),
                          engines * p("engines.dma.engine_gbps"), p("engines.dma.total_gbps")],
                         p("engines.dma.saturation"))
    return descriptor / channels, count * size / (bandwidth * 1e9)


@pytest.mark.parametrize(("overlap", "combine"), [
    (1.0, lambda d, m: d + m),                      # the default: one after the other
    (2.0, lambda d, m: (d * d + m * m) ** 0.5),
    (30.0, max),                                    # nearly the slower alone
])
def test_channel_time_is_a_soft_maximum_of_descriptor_work_and_data(zen3, overlap, combine):
    hw = zen3.hw.with_values({"engines.dma.overlap": overlap}, zen3.hw.sections[
        "engines.dma"]["overlap"].provenance)
    for channels, size in ((1, 64 * K), (4, M), (16, 2 * M)):
        d, m = hand_parts(hw, channels, size)
        assert channel_s(zen3, hw, channels, size) == pytest.approx(combine(d, m), rel=1e-2)


def test_a_profile_without_overlap_adds_the_two() -> None:
    cxl = build_context(hw="dram-cxl", params={"engine": "dma", "workers": 1})
    assert cxl.hw.value("engines.dma.overlap") == 1.0
    assert cxl.hw.sections["engines.dma"]["overlap"].provenance.kind == "assumed"


def test_second_channel_helps_pte_mapped_folios_more_than_thps(zen3):
    # RFC V3: 1 -> 2 PTDMA channels move 1 MiB mTHPs 1.51x as fast (4.78 -> 7.21 GB/s),
    # 2 MiB THPs only 1.14x (12.50 -> 14.23): the pair of channels shares one engine's bytes.
    def gbps(channels: int, size: int) -> float:
        params = {**zen3.params, "dma.channels": channels}
        return price_uniform(zen3.pm, size, (1 << 30) // size, zen3.hw, params,
                             engines=zen3.engines).throughput_gbps

    mthp = gbps(2, M) / gbps(1, M)
    thp = gbps(2, 2 * M) / gbps(1, 2 * M)
    assert mthp == pytest.approx(7.21 / 4.78, rel=0.1)
    assert thp == pytest.approx(14.23 / 12.50, rel=0.2)
    assert mthp > thp + 0.2  # with the two costs added, both gain alike (1.53x and 1.55x)
