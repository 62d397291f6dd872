"""Real copies in this process: what ``migpolicy move --execute`` measures.

:func:`copy_folios` copies a buffer as folios with Python threads that release
the GIL (``numpy.copyto`` on large slices does), splitting the work as the
``mt`` engine model does: with at least as many folios as threads each thread
copies a contiguous run of whole folios (one slice, since consecutive folios
are one byte range); with fewer, every folio is split into one piece per
thread. :func:`copy_into` does the same between two given arrays.
:func:`gpu_copy_folios` does the same host→device with CuPy or
PyTorch on pinned memory, one CUDA stream per worker. Neither library is
imported until a GPU copy is asked for, so migpolicy imports without them.

Buffers are allocated and touched before timing, so page faults are not
measured; worker threads are started before timing and wait on a barrier, so
thread creation is not measured either. Every function returns the best
(shortest) of its repeats; the two that allocate their own buffers check once
that the copy is exact.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from migpolicy.errors import InputError

__all__ = [
    "CHUNK_BYTES",
    "ThreadTeam",
    "copy_folios",
    "copy_into",
    "copy_job",
    "folio_shares",
    "gpu_backend",
    "gpu_copy_folios",
    "pattern",
    "zero",
]

#: Most worker threads (or GPU streams) a real copy may use.
MAX_WORKERS = 1024

#: A copy job: copies its share of the buffer when called.
_Job = Callable[[], None]


def _check_args(nbytes: int, folio_size: int, workers: int, repeats: int, unit: str) -> int:
    """Validate the arguments of a copy; return the number of folios."""
    for name, value in (("nbytes", nbytes), ("folio_size", folio_size), (unit, workers),
                        ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"real copy: {name} must be a positive whole number, got {value!r}")
    if nbytes % folio_size:
        raise InputError(f"real copy: nbytes {nbytes} is not a whole multiple of the folio "
                         f"size {folio_size}")
    if workers > MAX_WORKERS:
        raise InputError(f"real copy: {unit} must be at most {MAX_WORKERS}, got {workers}")
    return nbytes // folio_size


def _available_memory() -> int:
    """Bytes of memory this machine can still hand out without swapping."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_memory(needed: int, what: str) -> None:
    available = _available_memory()
    if needed > available:
        raise InputError(f"real copy: {what} needs {needed / 2**20:.0f} MiB but only "
                         f"{available / 2**20:.0f} MiB of memory is available")


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``range(n)``; the first ``n % parts`` one longer."""
    base, extra = divmod(n, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + base + (i < extra))
    return list(itertools.pairwise(bounds))


def folio_shares(nfolios: int, folio_size: int, workers: int) -> list[list[tuple[int, int]]]:
    """Per worker, the byte ranges it copies, split the way the ``mt`` engine model does."""
    if nfolios >= workers:
        return [[(a * folio_size, b * folio_size)] for a, b in _split(nfolios, workers)]
    pieces = _split(folio_size, workers)
    return [[(f * folio_size + a, f * folio_size + b) for f in range(nfolios) if b > a]
            for a, b in pieces]


def copy_job(src: np.ndarray, dst: np.ndarray, share: list[tuple[int, int]],
             nfolios: int, folio_size: int) -> _Job:
    """One thread's copy: one slice for a run of whole folios, one strided copy for pieces."""
    if len(share) == 1:
        a, b = share[0]
        s, d = src[a:b], dst[a:b]
    elif share:
        a, b = share[0]
        s = src.reshape(nfolios, folio_size)[:, a:b]
        d = dst.reshape(nfolios, folio_size)[:, a:b]
    else:
        return lambda: None
    return functools.partial(np.copyto, d, s)


class ThreadTeam:
    """Worker threads that run their jobs together each time :meth:`run` is called.

    The calling thread runs ``jobs[0]``; one started thread runs each other
    job. Threads wait on a barrier between runs, so only the copy is timed.
    :meth:`close` aborts both barriers, so it returns promptly whether the
    workers wait to start or to finish a run (after Ctrl-C interrupted
    :meth:`run` half-way, they wait at the second); a worker in the middle of
    its job finishes that job first. Use it as a context manager.
    """

    def __init__(self, jobs: Sequence[_Job]) -> None:
        self._jobs = jobs
        self._start = threading.Barrier(len(jobs))
        self._done = threading.Barrier(len(jobs))
        self._errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._serve, args=(job,), daemon=True,
                                          name=f"migpolicy-copy-{i + 1}")
                         for i, job in enumerate(jobs[1:])]
        for thread in self._threads:
            thread.start()

    def _serve(self, job: _Job) -> None:
        try:
            while True:
                self._start.wait()
                try:
                    job()
                except BaseException as exc:  # reported by run() in the calling thread
                    self._errors.append(exc)
                self._done.wait()
        except threading.BrokenBarrierError:  # close(): the team is over
            return

    def run(self) -> float:
        """Run every job once, in parallel; return the elapsed seconds."""
        begin = time.perf_counter()
        self._start.wait()
        self._jobs[0]()
        self._done.wait()
        elapsed = time.perf_counter() - begin
        if self._errors:
            raise self._errors[0]
        return elapsed

    def close(self) -> None:
        """Stop and join the worker threads; safe to call at any moment, and twice."""
        self._start.abort()
        self._done.abort()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> ThreadTeam:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: Bytes touched per numpy call when preparing or checking buffers: Python handles
#: Ctrl-C only between calls, so no call may take long (64 MiB: a few milliseconds).
CHUNK_BYTES = 64 << 20


def _spans(nbytes: int, step: int = CHUNK_BYTES) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` byte ranges of at most ``step`` covering ``range(nbytes)``."""
    for start in range(0, nbytes, step):
        yield start, min(start + step, nbytes)


def pattern(buffer: np.ndarray) -> None:
    """Fill ``buffer`` (bytes) with a pattern in which no 8-byte word repeats; zero-copy,
    in chunks, so that Ctrl-C is handled promptly even for gigabytes."""
    words = len(buffer) // 8
    view = buffer[: words * 8].view(np.uint64)
    for a, b in _spans(words, CHUNK_BYTES // 8):
        view[a:b] = np.arange(a, b, dtype=np.uint64)
    buffer[words * 8:] = np.arange(len(buffer) - words * 8, dtype=np.uint8) + 1


def zero(buffer: np.ndarray) -> None:
    """``buffer.fill(0)`` in chunks (see :data:`CHUNK_BYTES`)."""
    for a, b in _spans(len(buffer)):
        buffer[a:b] = 0


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """``np.array_equal`` of two byte arrays of equal length, in chunks."""
    return all(np.array_equal(a[i:j], b[i:j]) for i, j in _spans(len(a)))


@contextlib.contextmanager
def _team_for(dst: np.ndarray, src: np.ndarray, folio_size: int, threads: int):
    """A started :class:`ThreadTeam` copying ``src`` into ``dst`` as folios; closed on exit."""
    nfolios = len(src) // folio_size
    team = ThreadTeam([copy_job(src, dst, share, nfolios, folio_size)
                  for share in folio_shares(nfolios, folio_size, threads)])
    try:
        yield team
    finally:
        team.close()


def copy_into(dst: np.ndarray, src: np.ndarray, folio_size: int, threads: int,
              repeats: int = 1) -> float:
    """Copy ``src`` into ``dst`` (equal-length byte arrays) ``repeats`` times; best seconds.

    The copy is split into folios of ``folio_size`` among ``threads`` threads
    as :func:`copy_folios` does; nothing is allocated, touched or checked here.
    """
    for name, array in (("dst", dst), ("src", src)):
        if array.dtype != np.uint8 or array.ndim != 1 or not array.flags.c_contiguous:
            raise InputError(f"real copy: {name} must be a contiguous 1-D uint8 array, got "
                             f"{array.dtype} with shape {array.shape}")
    if len(dst) != len(src):
        raise InputError(f"real copy: dst holds {len(dst)} bytes but src {len(src)}")
    _check_args(len(src), folio_size, threads, repeats, "threads")
    with _team_for(dst, src, folio_size, threads) as team:
        return min(team.run() for _ in range(repeats))


def copy_folios(nbytes: int, folio_size: int, threads: int, repeats: int = 5) -> float:
    """Copy ``nbytes`` in folios of ``folio_size`` with ``threads`` threads; return seconds.

    The source and destination are fresh buffers, touched before timing. One
    untimed copy warms up and is checked byte for byte; then the best
    (shortest) of ``repeats`` timed copies is returned. Raises
    :class:`InputError` for impossible arguments or too little memory, and
    :class:`RuntimeError` if the copy does not reproduce the source.
    """
    _check_args(nbytes, folio_size, threads, repeats, "threads")
    _check_memory(2 * nbytes, f"copying {nbytes} bytes")
    try:
        src = np.empty(nbytes, dtype=np.uint8)
        dst = np.empty(nbytes, dtype=np.uint8)
    except MemoryError:
        raise InputError(f"real copy: not enough memory for two buffers of {nbytes} "
                         "bytes") from None
    pattern(src)
    zero(dst)
    with _team_for(dst, src, folio_size, threads) as team:
        team.run()
        if not _equal(src, dst):
            raise RuntimeError(f"real copy of {nbytes} bytes with {threads} threads in folios "
                               f"of {folio_size} bytes did not reproduce the source")
        return min(team.run() for _ in range(repeats))


@functools.cache
def gpu_backend() -> str | None:
    """``"cupy"`` or ``"torch"`` when that library imports and sees a CUDA GPU, else ``None``.

    Decided once per process (importing either library takes seconds).
    """
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy"
    except Exception:  # not installed, no driver, no device: all mean "not this one"
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return "torch"
    except Exception:
        pass
    return None


def _cupy_buffers(nbytes: int, streams: int):
    import cupy
    import cupyx

    host = cupyx.empty_pinned((nbytes,), dtype=np.uint8)
    device = cupy.empty(nbytes, dtype=np.uint8)
    queues = [cupy.cuda.Stream(non_blocking=True) for _ in range(streams)]
    host_ptr, device_ptr = host.ctypes.data, device.data.ptr
    kind = cupy.cuda.runtime.memcpyHostToDevice

    def copy(stream: int, a: int, b: int) -> None:
        cupy.cuda.runtime.memcpyAsync(device_ptr + a, host_ptr + a, b - a, kind,
                                      queues[stream].ptr)

    def sync() -> None:
        cupy.cuda.runtime.deviceSynchronize()

    return host, copy, sync, lambda: cupy.asnumpy(device)


def _torch_buffers(nbytes: int, streams: int):
    import torch

    pinned = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    device = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    queues = [torch.cuda.Stream() for _ in range(streams)]

    def copy(stream: int, a: int, b: int) -> None:
        with torch.cuda.stream(queues[stream]):
            device[a:b].copy_(pinned[a:b], non_blocking=True)

    return pinned.numpy(), copy, torch.cuda.synchronize, lambda: device.cpu().numpy()


def gpu_copy_folios(nbytes: int, folio_size: int, streams: int, repeats: int = 5) -> float:
    """Copy ``nbytes`` of pinned host memory to the GPU in folios over ``streams`` streams.

    Each stream copies a contiguous run of whole folios as one transfer, or,
    with fewer folios than streams, its piece of every folio. Synchronised
    before and after; one untimed, checked copy first; returns the best
    (shortest) of ``repeats`` in seconds. Raises :class:`InputError` when
    neither CuPy nor PyTorch sees a GPU, or for impossible arguments.
    """
    nfolios = _check_args(nbytes, folio_size, streams, repeats, "streams")
    backend = gpu_backend()
    if backend is None:
        raise InputError("real GPU copy: neither CuPy nor PyTorch sees a CUDA GPU on this "
                         "machine, so gpu figures can only be modelled")
    _check_memory(nbytes, f"a pinned host buffer of {nbytes} bytes")
    make = _cupy_buffers if backend == "cupy" else _torch_buffers
    try:
        host, copy, sync, fetch = make(nbytes, streams)
    except MemoryError:
        raise InputError(f"real GPU copy: cannot allocate {nbytes} bytes of pinned host "
                         "or device memory") from None
    except RuntimeError as exc:  # PyTorch's CUDA out-of-memory is a RuntimeError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"real GPU copy: cannot allocate {nbytes} bytes of pinned host "
                         f"or device memory ({first_line})") from None
    pattern(host)
    shares = folio_shares(nfolios, folio_size, streams)

    def once() -> float:
        sync()
        begin = time.perf_counter()
        for stream, share in enumerate(shares):
            for a, b in share:
                copy(stream, a, b)
        sync()
        return time.perf_counter() - begin

    once()
    if not _equal(fetch(), host):
        raise RuntimeError(f"real GPU copy of {nbytes} bytes over {streams} streams did not "
                           "reproduce the source")
    return min(once() for _ in range(repeats))
