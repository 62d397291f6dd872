"""Measuring what this machine's copies cost: the experiments of ``migpolicy hw calibrate``.

:func:`plan` lists the experiments a :class:`Settings` asks for, :func:`measure`
runs them (every sample kept, in a shuffled order) and :func:`write_table`
writes them as the CSV beside a calibrated profile;
:mod:`migpolicy.hardware.calibrate` fits the profile to them.

How a copy is measured, and why:

* An experiment moves at least 256 KiB (``min_bytes``): below that the
  timer's and the thread hand-off's microseconds, which wander with whatever
  else the machine runs, would be most of what is measured. So 4 KiB folios
  start at 64 per experiment; 256 KiB and larger at one.
* Data is cold, as the pages a migration moves are: every batch copies a
  region of a pool larger than twice the last-level cache, and the regions
  rotate through it. (A hot buffer copied again and again measures the cache:
  several times faster than memory for batches below the cache size.)
* A batch is what the kernel copies at once (at most ``batch.max_folios``
  folios); a larger experiment is copied batch after batch, each batch
  waking its workers once, as the ``mt`` engine model prices it.
* Threads copy as ``migpolicy move --execute`` does (:mod:`migpolicy.execute`):
  the calling thread and ``workers - 1`` started threads, which wait on a
  barrier between batches; folios are split among them as the ``mt`` model
  splits them. So a calibrated profile predicts what ``--execute`` measures.
* With two or more NUMA nodes the pool's source lies on the first node, its
  destination on the second and the threads run on the first (push): the
  copies cross the node link, which is what a migration's copy does.
* The timing harness's own per-batch cost (an idle one-thread team, measured
  first) is subtracted; waking worker threads is not: it is the per-thread
  start-up cost the profile models.
"""
from __future__ import annotations

import csv
import functools
import io
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from migpolicy import execute
from migpolicy.files import atomic_write_text
from migpolicy.hardware import numa
from migpolicy.hardware.tables import ROW_DTYPE

__all__ = [
    "ALL_COUNTS",
    "ALL_SIZES",
    "GPU_STREAMS",
    "QUICK_COUNTS",
    "QUICK_SIZES",
    "Experiment",
    "Measurement",
    "Progress",
    "Settings",
    "Silent",
    "measure",
    "plan",
    "table_rows",
    "table_text",
    "write_table",
]

KIB = 1 << 10
MIB = 1 << 20
#: Every folio size from a base page to a PMD-mapped THP.
ALL_SIZES = tuple(4 * KIB << i for i in range(10))
QUICK_SIZES = (4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 2 * MIB)
ALL_COUNTS = (1, 4, 16, 64, 256, 512, 1024, 4096)
QUICK_COUNTS = (1, 16, 256, 4096)
#: Folio counts of the move_pages() experiments (4 KiB pages; two or more nodes).
MOVE_COUNTS = (512, 4096, 32768)
GPU_STREAMS = (1, 2, 4)
#: Aim for about this much timed copying per sample, repeating short copies.
_SAMPLE_BUDGET_S = 1e-3
_MAX_REPEATS = 30
#: Rough copy bandwidth used only to choose how often a short copy is repeated.
_GUESS_BPS = 4e9

# CSV columns written for every experiment, in order.
_COLUMNS = ("engine", "folio_kib", "workers", "folio_count", "scope", "throughput_gbps",
            "samples", "min_gbps", "max_gbps", "spread_pct", "sample_gbps")


class Progress(Protocol):
    """What calibration reports while it runs (the CLI draws a progress bar from it)."""

    def phase(self, name: str, total: int | None) -> None:
        """A new phase starts; ``total`` steps, or ``None`` when unknown."""

    def advance(self, completed: int | None = None) -> None:
        """One more step is done (or ``completed`` steps in all)."""

    def note(self, message: str) -> None:
        """Something the user should read (an engine skipped, and why)."""


class Silent:
    """A :class:`Progress` that shows nothing (a library call, a test)."""

    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, completed: int | None = None) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class Settings:
    """What to measure. :meth:`preset` gives the full and the ``--quick`` grids."""

    engines: tuple[str, ...] = ("cpu", "mt", "gpu")
    sizes: tuple[int, ...] = ALL_SIZES
    counts: tuple[int, ...] = ALL_COUNTS
    max_bytes: int = 128 * MIB
    min_bytes: int = 256 * KIB
    samples: int = 15
    seed: int = 0
    threads: tuple[int, ...] = ()
    batch: int = 512

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> Settings:
        """The full grid, or the quick one (fewer sizes, counts and samples, smaller buffers)."""
        base = cls(sizes=QUICK_SIZES, counts=QUICK_COUNTS, max_bytes=32 * MIB,
                   samples=9) if quick else cls()
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given)

    def thread_counts(self) -> tuple[int, ...]:
        """Worker counts of the ``mt`` experiments: 1, 2, 4 ... and every CPU."""
        if self.threads:
            return self.threads
        cpus = os.cpu_count() or 1
        counts = {1 << i for i in range(cpus.bit_length()) if 1 << i <= cpus}
        return tuple(sorted(counts | {cpus}))


@dataclass(frozen=True)
class Experiment:
    """One measured configuration: an engine copying ``count`` folios with ``workers``."""

    engine: str
    folio_bytes: int
    count: int
    workers: int
    scope: str = "copy"

    @property
    def nbytes(self) -> int:
        """Bytes the experiment moves."""
        return self.folio_bytes * self.count


@dataclass
class Measurement:
    """Every sample (seconds) of one experiment."""

    experiment: Experiment
    seconds: list[float] = field(default_factory=list)

    @property
    def gbps(self) -> np.ndarray:
        """Throughput of each sample, GB/s."""
        return self.experiment.nbytes / np.asarray(self.seconds) / 1e9

    @property
    def median_gbps(self) -> float:
        """The experiment's throughput: the median of its samples.

        Each sample is the best of its repeats; the median of samples is far
        steadier than the best sample on a machine that other work shares.
        """
        return float(np.median(self.gbps))


def _batches(count: int, batch: int) -> list[int]:
    full, rest = divmod(count, batch)
    return [batch] * full + ([rest] if rest else [])


def plan(settings: Settings, *, gpu: bool, nodes: int) -> list[Experiment]:
    """The experiments to run: copies for each engine asked for, moves with 2+ nodes."""
    out = []
    pairs = [(size, count) for size in settings.sizes for count in settings.counts
             if settings.min_bytes <= size * count <= settings.max_bytes]
    for size, count in pairs:
        if "cpu" in settings.engines:
            out.append(Experiment("cpu", size, count, 1))
        if "mt" in settings.engines:
            out.extend(Experiment("mt", size, count, t) for t in settings.thread_counts())
        if gpu and "gpu" in settings.engines and count <= settings.batch:
            out.extend(Experiment("gpu", size, count, s) for s in GPU_STREAMS)
    if nodes > 1 and "cpu" in settings.engines:
        base = 4 * KIB
        counts = [c for c in MOVE_COUNTS if c * base <= settings.max_bytes] or [MOVE_COUNTS[0]]
        out.extend(Experiment("cpu", base, c, 1, scope="move") for c in counts)
    return out


def _run_slot(slots: list[Callable[[], None]], index: int) -> None:
    slots[index]()


def _idle() -> None:
    pass


class _CopyBench:
    """Cold copies of batches out of a pool larger than the last-level cache."""

    def __init__(self, pool_bytes: int, batch: int, nodes: Sequence[numa.NodeInfo]):
        self.batch = batch
        self.src = np.empty(pool_bytes, dtype=np.uint8)
        self.dst = np.empty(pool_bytes, dtype=np.uint8)
        execute.pattern(self.src)  # in chunks: Ctrl-C is handled between them
        execute.zero(self.dst)
        if len(nodes) > 1:  # copy across the first two nodes, workers on the source's
            numa.place(self.src, nodes[0].id)
            numa.place(self.dst, nodes[1].id)
        self.offset = 0
        self.harness = self._harness()

    def _region(self, nbytes: int) -> int:
        if self.offset + nbytes > len(self.src):
            self.offset = 0
        start = self.offset
        self.offset += nbytes
        return start

    def _harness(self) -> float:
        """Seconds an idle one-thread team takes per batch: the harness, not the copy."""
        team = execute.ThreadTeam([_idle])
        try:
            return float(np.median([team.run() for _ in range(101)]))
        finally:
            team.close()

    def seconds(self, exp: Experiment, repeats: int) -> float:
        """Best of ``repeats`` timed copies of the whole experiment, batch by batch."""
        slots: list[Callable[[], None]] = [_idle] * exp.workers
        team = execute.ThreadTeam(
            [functools.partial(_run_slot, slots, i) for i in range(len(slots))]
        )
        try:
            team.run()  # every helper thread is now waiting on the team's barrier
            best = math.inf
            for _ in range(repeats):
                total = 0.0
                for n in _batches(exp.count, self.batch):
                    nbytes = n * exp.folio_bytes
                    a = self._region(nbytes)
                    src, dst = self.src[a:a + nbytes], self.dst[a:a + nbytes]
                    slots[:] = [execute.copy_job(src, dst, share, n, exp.folio_bytes)
                                for share in execute.folio_shares(n, exp.folio_bytes, exp.workers)]
                    raw = team.run()
                    total += max(raw - self.harness, 0.05 * raw)
                best = min(best, total)
            return best
        finally:
            team.close()


def _gpu_seconds(exp: Experiment, repeats: int) -> float:
    return execute.gpu_copy_folios(exp.nbytes, exp.folio_bytes, exp.workers, repeats=repeats)


class _MoveBench:
    """move_pages() of buffers of base pages between the first two nodes, to and fro."""

    def __init__(self, nodes: Sequence[numa.NodeInfo]):
        self.nodes = (nodes[0].id, nodes[1].id)
        self.buffers: dict[int, tuple[np.ndarray, int]] = {}

    def seconds(self, exp: Experiment) -> float:
        """Seconds to move the experiment's pages to the other node (they alternate)."""
        if exp.count not in self.buffers:
            page = os.sysconf("SC_PAGE_SIZE")
            raw = np.ones((exp.count + 1) * page, dtype=np.uint8)
            start = -raw.ctypes.data % page
            buffer = raw[start:start + exp.count * page]
            numa.place(buffer, self.nodes[0])
            self.buffers[exp.count] = (buffer, self.nodes[0])
        buffer, here = self.buffers[exp.count]
        there = self.nodes[1] if here == self.nodes[0] else self.nodes[0]
        elapsed = numa.place(buffer, there)
        self.buffers[exp.count] = (buffer, there)
        return elapsed


def _repeats(exp: Experiment, batch: int) -> int:
    estimate = exp.nbytes / _GUESS_BPS + 2e-6 * len(_batches(exp.count, batch))
    return int(min(_MAX_REPEATS, max(2, math.ceil(_SAMPLE_BUDGET_S / estimate))))


def _pool_bytes(settings: Settings) -> int:
    wanted = max(2 * numa.llc_bytes(), settings.max_bytes, 8 * MIB)
    return -(-wanted // (2 * MIB)) * 2 * MIB


def measure(
    experiments: Sequence[Experiment],
    settings: Settings,
    progress: Progress | None = None,
    nodes: Sequence[numa.NodeInfo] | None = None,
) -> list[Measurement]:
    """Run every experiment ``settings.samples`` times, in an order shuffled by the seed."""
    progress = progress or Silent()
    nodes = list(nodes if nodes is not None else numa.detect_nodes())
    results = [Measurement(exp) for exp in experiments]
    order = [i for i in range(len(experiments)) for _ in range(settings.samples)]
    random.Random(settings.seed).shuffle(order)
    copies = any(e.scope == "copy" and e.engine in ("cpu", "mt") for e in experiments)
    affinity = os.sched_getaffinity(0)
    if len(nodes) > 1 and nodes[0].cpus:
        os.sched_setaffinity(0, nodes[0].cpus)  # workers run on the source node (push)
    try:
        bench = _CopyBench(_pool_bytes(settings), settings.batch, nodes) if copies else None
        mover = _MoveBench(nodes) if any(e.scope == "move" for e in experiments) else None
        progress.phase("measuring", len(order))
        for index in order:
            exp = experiments[index]
            if exp.scope == "move":
                assert mover is not None
                seconds = mover.seconds(exp)
            elif exp.engine == "gpu":
                seconds = _gpu_seconds(exp, _repeats(exp, settings.batch))
            else:
                assert bench is not None
                seconds = bench.seconds(exp, _repeats(exp, settings.batch))
            results[index].seconds.append(seconds)
            progress.advance()
    finally:
        os.sched_setaffinity(0, affinity)
    return results


def table_rows(measurements: Sequence[Measurement]) -> np.ndarray:
    """The measurements as table rows (:data:`ROW_DTYPE`), throughput the median sample."""
    rows = [(m.experiment.engine, m.experiment.folio_bytes, m.experiment.workers,
             m.experiment.count, "spread", "push", m.experiment.scope, m.median_gbps, i + 2)
            for i, m in enumerate(measurements)]
    return np.array(rows, dtype=ROW_DTYPE)


def write_table(path: str | Path, measurements: Sequence[Measurement]) -> None:
    """Write one CSV row per experiment with every sample and their spread (atomically)."""
    atomic_write_text(path, table_text(measurements), "calibration measurements")


def table_text(measurements: Sequence[Measurement]) -> str:
    """The CSV :func:`write_table` writes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for m in measurements:
        exp, gbps = m.experiment, m.gbps
        writer.writerow([
            exp.engine, f"{exp.folio_bytes / KIB:g}", exp.workers, exp.count, exp.scope,
            f"{m.median_gbps:.6g}", len(gbps), f"{gbps.min():.6g}", f"{gbps.max():.6g}",
            f"{(gbps.max() - gbps.min()) / m.median_gbps * 100:.3g}",
            " ".join(f"{g:.6g}" for g in gbps),
        ])
    return out.getvalue()
