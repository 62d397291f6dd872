"""Real copies (migpolicy.execute): content, the mt engine's split, bad arguments, no GPU."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types

import numpy as np
import pytest

from migpolicy import execute
from migpolicy.errors import InputError
from migpolicy.execute import copy_folios, copy_into, gpu_backend, gpu_copy_folios

GPU_LIBRARIES = [name for name in ("cupy", "torch") if importlib.util.find_spec(name)]
no_gpu_library = pytest.mark.skipif(bool(GPU_LIBRARIES),
                                    reason=f"{', '.join(GPU_LIBRARIES)} installed here")


def distinct_bytes(n: int) -> np.ndarray:
    """Bytes in which a piece copied to the wrong place or left out shows."""
    return np.random.default_rng(n).integers(1, 256, n, dtype=np.uint8)


@pytest.mark.parametrize(
    ("nfolios", "folio_size", "threads"),
    [
        (1, 4096, 1),
        (16, 4096, 2),
        (7, 4096, 3),     # folios not divisible by threads
        (3, 4096, 8),     # fewer folios than threads: every folio split
        (2, 10, 3),       # pieces of unequal length
        (1, 3, 7),        # more threads than bytes in the folio
        (5, 65536, 5),
        (4, 2 << 20, 2),
    ],
)
def test_copy_into_reproduces_the_source(nfolios: int, folio_size: int, threads: int) -> None:
    src = distinct_bytes(nfolios * folio_size)
    dst = np.zeros_like(src)
    seconds = copy_into(dst, src, folio_size, threads)
    assert seconds > 0
    np.testing.assert_array_equal(dst, src)


def test_copy_into_leaves_bytes_outside_the_buffers_alone() -> None:
    whole = np.zeros(3 * 4096 + 2, dtype=np.uint8)
    src = distinct_bytes(3 * 4096)
    copy_into(whole[1:-1], src, 4096, 4)
    assert whole[0] == 0 and whole[-1] == 0
    np.testing.assert_array_equal(whole[1:-1], src)


@pytest.mark.parametrize(("nfolios", "threads"), [(10, 3), (512, 8), (8, 8), (2, 5), (1, 4)])
def test_work_is_split_as_the_mt_engine_models_it(nfolios: int, threads: int) -> None:
    folio = 4096
    shares = execute.folio_shares(nfolios, folio, threads)
    assert len(shares) == threads
    covered = np.zeros(nfolios * folio, dtype=np.int64)
    for share in shares:
        for a, b in share:
            covered[a:b] += 1
    assert (covered == 1).all()
    if nfolios >= threads:  # whole folios, one contiguous run each, busiest ceil(n / T)
        assert all(len(share) == 1 and share[0][0] % folio == 0 == share[0][1] % folio
                   for share in shares)
        assert max((b - a) // folio for (a, b), in shares) == -(-nfolios // threads)
    else:  # every thread holds a piece of every folio
        assert all(len(share) == nfolios for share in shares)


@pytest.mark.parametrize(("nbytes", "folio_size", "threads"),
                         [(1 << 20, 4096, 1), (1 << 20, 64 << 10, 2), (4 << 20, 2 << 20, 3)])
def test_copy_folios_times_a_checked_copy(nbytes: int, folio_size: int, threads: int) -> None:
    assert copy_folios(nbytes, folio_size, threads, repeats=2) > 0


def test_copy_folios_notices_a_copy_that_misses_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = execute.folio_shares

    def dropping_last(nfolios: int, folio_size: int, workers: int):
        shares = real(nfolios, folio_size, workers)
        return [*shares[:-1], []]

    monkeypatch.setattr(execute, "folio_shares", dropping_last)
    with pytest.raises(RuntimeError, match="did not reproduce the source"):
        copy_folios(8 * 4096, 4096, 2, repeats=1)


@pytest.mark.parametrize(
    ("nbytes", "folio_size", "threads", "repeats", "message"),
    [
        (10_000, 4096, 1, 1, "not a whole multiple of the folio size 4096"),
        (8192, 4096, 0, 1, "threads must be a positive whole number, got 0"),
        (8192, 4096, -2, 1, "threads must be a positive whole number"),
        (8192, 4096, True, 1, "threads must be a positive whole number"),
        (8192, 4096, 2.0, 1, "threads must be a positive whole number"),
        (0, 4096, 1, 1, "nbytes must be a positive whole number"),
        (8192, 0, 1, 1, "folio_size must be a positive whole number"),
        (8192, 4096, 1, 0, "repeats must be a positive whole number"),
        (8192, 4096, 5000, 1, "threads must be at most 1024"),
        (1 << 52, 4096, 1, 1, "of memory is available"),
    ],
)
def test_bad_arguments_are_one_sentence(nbytes, folio_size, threads, repeats, message) -> None:
    with pytest.raises(InputError, match=message) as caught:
        copy_folios(nbytes, folio_size, threads, repeats=repeats)
    assert "\n" not in str(caught.value)


def test_copy_into_rejects_mismatched_buffers() -> None:
    src = distinct_bytes(8192)
    with pytest.raises(InputError, match="dst holds 4096 bytes but src 8192"):
        copy_into(np.zeros(4096, dtype=np.uint8), src, 4096, 1)
    with pytest.raises(InputError, match="dst must be a contiguous 1-D uint8 array"):
        copy_into(np.zeros(1024, dtype=np.float64), src, 4096, 1)
    with pytest.raises(InputError, match="src must be a contiguous 1-D uint8 array"):
        copy_into(np.zeros(8192, dtype=np.uint8), np.zeros(16384, dtype=np.uint8)[::2], 4096, 1)


@no_gpu_library
def test_no_gpu_backend_without_cupy_or_torch() -> None:
    assert gpu_backend() is None


@no_gpu_library
def test_gpu_copy_without_a_gpu_is_a_clear_input_error() -> None:
    with pytest.raises(InputError, match="neither CuPy nor PyTorch sees a CUDA GPU"):
        gpu_copy_folios(1 << 20, 4096, streams=2)


def test_gpu_copy_checks_its_arguments_first() -> None:
    with pytest.raises(InputError, match="streams must be a positive whole number"):
        gpu_copy_folios(1 << 20, 4096, streams=0)


class FakeTensor:
    """The few operations of a PyTorch tensor that a host→device copy uses, on numpy."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __getitem__(self, index: slice) -> FakeTensor:
        return FakeTensor(self.array[index])

    def copy_(self, other: FakeTensor, non_blocking: bool = False) -> None:
        np.copyto(self.array, other.array)

    def numpy(self) -> np.ndarray:
        return self.array

    def cpu(self) -> FakeTensor:
        return FakeTensor(self.array.copy())


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch):
    """A stand-in ``torch`` with one CUDA device whose memory is host memory."""
    torch = types.ModuleType("torch")
    torch.uint8 = np.uint8
    torch.empty = lambda n, dtype, pin_memory=False, device=None: FakeTensor(
        np.zeros(n, dtype=np.uint8))
    torch.cuda = types.SimpleNamespace(
        is_available=lambda: True, Stream=object, synchronize=lambda: None,
        stream=lambda queue: contextlib.nullcontext())
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "cupy", None)
    gpu_backend.cache_clear()
    yield torch
    gpu_backend.cache_clear()


@pytest.mark.parametrize(("nbytes", "folio_size", "streams"),
                         [(1 << 20, 4096, 2), (4096, 4096, 4), (3 * 8192, 8192, 5)])
def test_gpu_copy_runs_through_torch_when_it_sees_a_gpu(fake_torch, nbytes, folio_size,
                                                        streams) -> None:
    assert gpu_backend() == "torch"
    assert gpu_copy_folios(nbytes, folio_size, streams=streams, repeats=2) > 0


# -- the thread team: prompt shutdown whatever state Ctrl-C leaves it in --------------------


def _closes_promptly(team: execute.ThreadTeam) -> bool:
    import threading

    closer = threading.Thread(target=team.close, daemon=True)
    closer.start()
    closer.join(timeout=5)
    return not closer.is_alive() and not any(t.is_alive() for t in team._threads)


def test_team_closes_when_interrupted_between_its_barriers() -> None:
    """Ctrl-C in the caller's own job: the workers already wait at the done barrier."""
    import threading

    before = threading.active_count()

    def interrupted() -> None:
        raise KeyboardInterrupt

    team = execute.ThreadTeam([interrupted, lambda: None, lambda: None])
    with pytest.raises(KeyboardInterrupt):
        team.run()
    assert _closes_promptly(team)
    assert threading.active_count() == before


def test_team_closes_idle_twice_and_as_a_context_manager() -> None:
    import threading

    before = threading.active_count()
    with execute.ThreadTeam([lambda: None] * 4) as team:
        assert team.run() >= 0
        assert threading.active_count() == before + 3
    assert threading.active_count() == before
    assert _closes_promptly(team)


def test_team_reports_a_worker_error_and_still_closes() -> None:
    def fails() -> None:
        raise ValueError("worker failed")

    team = execute.ThreadTeam([lambda: None, fails])
    with pytest.raises(ValueError, match="worker failed"):
        team.run()
    assert _closes_promptly(team)
