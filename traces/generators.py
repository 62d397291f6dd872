"""Synthetic traces, deterministic by seed: zipf, phases, scan, gups and tenants.

Every generator draws its events in fixed blocks from one
``numpy.random.Generator`` seeded with ``seed``, so the same arguments give
the same trace whatever chunk size the consumer asks for. Events are spaced
``interval_ns`` apart (10 ns: about one access per 10 ns, a memory-bound
core). Pages are numbered from 0; the tenants generator puts each tenant's
pages in its own region, 4 GiB (of 4 KiB pages) apart, like separate
processes' heaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import (
    EVENT_DTYPE,
    OP_MODIFY,
    OP_READ,
    OP_WRITE,
    TraceGenerator,
    TraceOption,
)

__all__ = ["GENERATORS"]

BLOCK = 1 << 16
#: Distance between tenants' regions, in pages (4 GiB of 4 KiB pages).
TENANT_STRIDE = 1 << 20

_INTERVAL = TraceOption("interval_ns", 10, "time between consecutive events (ns)")
_WRITES = TraceOption("write_ratio", 0.3, "fraction of accesses that are stores")
_ALPHA = TraceOption("alpha", 1.0, "zipf exponent: higher is more skewed")

PagePicker = Callable[[np.random.Generator, int, int], np.ndarray]


def _zipf_picker(pages: int, alpha: float, rng: np.random.Generator) -> PagePicker:
    """Pages drawn with P(rank k) ∝ 1/k^alpha; ranks scattered over the pages."""
    weights = 1.0 / np.arange(1, pages + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    where = rng.permutation(pages)

    def pick(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), pages - 1)
        return where[ranks]

    return pick


def _stream(events: int, options: Mapping[str, Any], rng: np.random.Generator,
            pick: PagePicker, ops: Callable[[np.random.Generator, int], np.ndarray],
            tenant: Callable[[np.random.Generator, int, np.ndarray], np.ndarray] | None = None,
            ) -> Iterator[np.ndarray]:
    interval = int(options.get("interval_ns", 10))
    for start in range(0, events, BLOCK):
        n = min(BLOCK, events - start)
        out = np.empty(n, dtype=EVENT_DTYPE)
        out["t_ns"] = (start + np.arange(n, dtype=np.int64)) * interval
        pages = pick(rng, start, n)
        out["page"] = pages
        out["op"] = ops(rng, n)
        out["tenant"] = 0 if tenant is None else tenant(rng, start, pages)
        out["weight"] = 1.0
        yield out


def _rw(ratio: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    def ops(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.where(rng.random(n) < ratio, OP_WRITE, OP_READ).astype(np.uint8)

    return ops


def _check(events: int, pages: int) -> None:
    if events < 1 or pages < 1:
        raise ValueError(f"expected at least one event and one page, got {events} and {pages}")


def gen_zipf(events: int, pages: int, seed: int, options: Mapping[str, Any]
             ) -> Iterator[np.ndarray]:
    """A fixed zipf-distributed hot set."""
    _check(events, pages)
    rng = np.random.default_rng(seed)
    pick = _zipf_picker(pages, float(options["alpha"]), rng)
    return _stream(events, options, rng, pick, _rw(float(options["write_ratio"])))


def gen_phases(events: int, pages: int, seed: int, options: Mapping[str, Any]
               ) -> Iterator[np.ndarray]:
    """A hot set that moves to another part of the address space at each phase."""
    _check(events, pages)
    rng = np.random.default_rng(seed)
    phases = max(1, int(options["phases"]))
    hot = max(1, int(pages * float(options["hot_fraction"])))
    share = float(options["hot_share"])
    starts = rng.integers(0, max(1, pages - hot + 1), size=phases)
    length = -(-events // phases)

    def pick(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        phase = np.minimum((start + np.arange(n)) // length, phases - 1)
        in_hot = rng.random(n) < share
        hot_pages = starts[phase] + rng.integers(0, hot, size=n)
        cold_pages = rng.integers(0, pages, size=n)
        return np.where(in_hot, hot_pages, cold_pages)

    return _stream(events, options, rng, pick, _rw(float(options["write_ratio"])))


def gen_scan(events: int, pages: int, seed: int, options: Mapping[str, Any]
             ) -> Iterator[np.ndarray]:
    """Sequential scans over all pages, ``per_page`` accesses to each page in a row."""
    _check(events, pages)
    rng = np.random.default_rng(seed)
    per_page = max(1, int(options["per_page"]))

    def pick(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        return ((start + np.arange(n, dtype=np.int64)) // per_page) % pages

    return _stream(events, options, rng, pick, _rw(float(options["write_ratio"])))


def gen_gups(events: int, pages: int, seed: int, options: Mapping[str, Any]
             ) -> Iterator[np.ndarray]:
    """GUPS: read-modify-write updates of uniformly random pages."""
    _check(events, pages)
    rng = np.random.default_rng(seed)

    def pick(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        return rng.integers(0, pages, size=n)

    def ops(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, OP_MODIFY, dtype=np.uint8)

    return _stream(events, options, rng, pick, ops)


def gen_tenants(events: int, pages: int, seed: int, options: Mapping[str, Any]
                ) -> Iterator[np.ndarray]:
    """Several tenants, each in its own region, cycling through zipf, scan and gups patterns."""
    _check(events, pages)
    rng = np.random.default_rng(seed)
    count = max(1, int(options["tenants"]))
    own = max(1, pages // count)
    zipf = _zipf_picker(own, float(options["alpha"]), rng)
    share = rng.dirichlet(np.ones(count))

    def pick(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        who = rng.choice(count, size=n, p=share)
        pattern = who % 3
        index = start + np.arange(n, dtype=np.int64)
        local = np.where(pattern == 0, zipf(rng, start, n),
                         np.where(pattern == 1, index % own, rng.integers(0, own, size=n)))
        return who * TENANT_STRIDE + local

    def tenant(rng: np.random.Generator, start: int, pages_: np.ndarray) -> np.ndarray:
        return (pages_ // TENANT_STRIDE).astype(np.int32)

    return _stream(events, options, rng, pick, _rw(float(options["write_ratio"])), tenant)


GENERATORS = (
    TraceGenerator("zipf", "a fixed zipf hot set", gen_zipf, (_ALPHA, _WRITES, _INTERVAL)),
    TraceGenerator("phases", "a hot set that moves between phases", gen_phases, (
        TraceOption("phases", 4, "number of phases (the hot set moves between them)"),
        TraceOption("hot_fraction", 0.1, "hot set size as a fraction of the pages"),
        TraceOption("hot_share", 0.9, "fraction of accesses that go to the hot set"),
        _WRITES, _INTERVAL)),
    TraceGenerator("scan", "sequential scans over all pages", gen_scan, (
        TraceOption("per_page", 1, "consecutive accesses to each page"),
        TraceOption("write_ratio", 0.0, "fraction of accesses that are stores"), _INTERVAL)),
    TraceGenerator("gups", "uniform random read-modify-write updates (GUPS)", gen_gups,
                   (_INTERVAL,)),
    TraceGenerator("tenants", "several tenants with zipf, scan and gups patterns", gen_tenants, (
        TraceOption("tenants", 3, "number of tenants"), _ALPHA, _WRITES, _INTERVAL)),
)


@hookimpl(trylast=True)
def migpolicy_trace_generators():
    return list(GENERATORS)
