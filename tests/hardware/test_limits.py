"""Physical limits: impossible migrations are refused; modelled answers respect the machine."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.hardware.limits import check_folio_size, check_move, folio_sizes, move_notes
from migpolicy.pipeline import price_uniform

K, M, G = 1 << 10, 1 << 20, 1 << 30


@pytest.fixture(scope="module")
def zen3():
    return build_context(hw="zen3-epyc-ptdma")


def one_error_line(code: int, err: str, *needles: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def test_folio_sizes_of_a_4k_kernel_are_mthp_and_thp(zen3):
    # 4 KiB base pages, 2 MiB PMD: 4K, 8K, ..., 2M (ten sizes, as mTHP allows)
    assert folio_sizes(zen3.hw) == [4 * K << i for i in range(10)]


def test_gh200_has_64k_base_pages_up_to_a_512m_pmd():
    hw = build_context(hw="gh200").hw
    sizes = folio_sizes(hw)
    assert sizes[0] == 64 * K and sizes[-1] == 512 * M
    with pytest.raises(InputError, match="64KiB base page"):
        check_folio_size(hw, 4 * K)


@given(st.integers(min_value=1, max_value=4 * G))
def test_a_folio_size_is_accepted_exactly_when_a_power_of_two_in_range(size):
    hw = build_context(hw="zen3-epyc-ptdma").hw
    ok = size & (size - 1) == 0 and 4 * K <= size <= 2 * M
    if ok:
        check_folio_size(hw, size)
    else:
        with pytest.raises(InputError):
            check_folio_size(hw, size)


def test_pud_hugetlb_size_is_a_folio_only_where_the_profile_has_it(zen3):
    from dataclasses import replace

    with pytest.raises(InputError, match="--folio 1GiB"):
        check_folio_size(zen3.hw, G)
    check_folio_size(replace(zen3.hw, pud_size=G), G)


def test_bytes_must_fit_both_nodes():
    hw = build_context(hw="dram-cxl").hw  # 512 GiB DRAM, 256 GiB CXL expander
    check_move(hw, nbytes=256 * G, folio=2 * M, src=0, dst=1)
    with pytest.raises(InputError, match=r"node 1 .*--dst.*256GiB"):
        check_move(hw, nbytes=300 * G, folio=2 * M, src=0, dst=1)
    with pytest.raises(InputError, match=r"node 1 .*--src"):
        check_move(hw, nbytes=300 * G, folio=2 * M, src=1, dst=0)


@pytest.mark.parametrize(("args", "needles"), [
    (("--folio", "3M"), ("--folio 3MiB", "power of two")),
    (("--folio", "12K"), ("--folio 12KiB", "power of two")),
    (("--folio", "1G"), ("--folio 1GiB", "2MiB PMD")),
    (("--bytes", "100T"), ("--bytes", "node 0", "256GiB")),
])
def test_move_refuses_what_the_machine_cannot_do(run_cli, args, needles):
    code, out, err = run_cli("move", *args, "--json")
    one_error_line(code, err, *needles)
    assert out == ""


def test_cpu_time_never_exceeds_what_the_free_cpus_give(run_cli):
    code, out, err = run_cli("move", "--folio", "2M", "--engine", "mt", "--workers", "64",
                             "--load", "0.99", "--json")
    assert code == 0, err
    data = json.loads(out)
    # 64 cores x 2 threads, 99% busy: 1.28 hardware threads free (the initiator included)
    free = 64 * 2 * (1 - 0.99)
    assert data["cpu_s"] <= data["total_s"] * free * 1.0001
    # and the wall time shows the time-sharing: far slower than with the CPUs idle
    code, idle, _ = run_cli("move", "--folio", "2M", "--engine", "mt", "--workers", "64",
                            "--json")
    assert json.loads(idle)["total_s"] < data["total_s"] / 2


def test_links_are_directional_where_measured(zen3):
    gh200 = build_context(hw="gh200", params={"engine": "gpu", "workers": 4})
    to_gpu = price_uniform(gh200.pm, 512 * M, 16, gh200.hw, gh200.params, src=0, dst=1)
    to_host = price_uniform(gh200.pm, 512 * M, 16, gh200.hw, gh200.params, src=1, dst=0)
    # measured NVLink-C2C: about 375 GB/s host-to-GPU, 297 GPU-to-host (arXiv 2407.07850)
    assert 330 < to_gpu.throughput_gbps <= 375
    assert 260 < to_host.throughput_gbps <= 297
    assert to_gpu.throughput_gbps / to_host.throughput_gbps == pytest.approx(375 / 297, rel=0.05)


def test_cxl_copy_is_capped_near_the_measured_expander_bandwidth():
    cxl = build_context(hw="dram-cxl", params={"engine": "mt", "workers": 32})
    report = price_uniform(cxl.pm, 2 * M, 512, cxl.hw, cxl.params, src=0, dst=1)
    assert report.throughput_gbps <= 32.0  # a PCIe Gen5 CXL expander measured ~32 GB/s


def test_push_and_pull_differ_only_where_the_sides_run_on_different_cpus():
    def gbps(hw, side):
        run = build_context(hw=hw, params={"engine": "mt", "workers": 8, "mt.side": side})
        return price_uniform(run.pm, 2 * M, 512, run.hw, run.params, src=0, dst=1
                             ).throughput_gbps

    # the CXL node has no CPUs: both directions run on node 0's cores
    assert gbps("dram-cxl", "pull") == pytest.approx(gbps("dram-cxl", "push"))
    # two sockets: pulling runs on the destination socket's cores, at pull_factor
    assert gbps("zen3-epyc-ptdma", "pull") < gbps("zen3-epyc-ptdma", "push")


def test_odd_dma_channel_counts_are_flagged_as_extrapolated(zen3, run_cli):
    assert move_notes(zen3.hw, {"engine": "dma", "dma.channels": 4}) == []
    (note,) = move_notes(zen3.hw, {"engine": "dma", "dma.channels": 3})
    assert "3 channels" in note and "no table measures an odd channel count" in note
    code, out, err = run_cli("move", "--engine", "dma", "--workers", "3", "--json")
    assert code == 0, err
    json.loads(out)  # stdout stays pure JSON; the note goes to stderr
    assert "no table measures an odd channel count" in " ".join(err.split())
