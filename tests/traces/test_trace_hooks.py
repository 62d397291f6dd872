"""The trace hooks through migpolicy: a plugin's format is detected and read, its generator runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from migpolicy.contract import TraceFormat, TraceGenerator, TraceSource, empty_events, hookimpl
from migpolicy.traces import generated_trace, open_trace, trace_formats, trace_generators


def _tsv_events(rows: list[list[int]], page_size: int) -> np.ndarray:
    table = np.array(rows, dtype=np.int64)
    events = empty_events(len(table))
    events["t_ns"], events["op"] = table[:, 0], table[:, 2]
    events["page"] = table[:, 1] // page_size
    return events


def read_tsv(source: TraceSource) -> Iterator[np.ndarray]:
    """A test trace format: ``t_ns address op`` per line, in chunks of 1000 lines."""
    rows: list[list[int]] = []
    for line in source.stream:
        rows.append([int(v) for v in line.split()])
        if len(rows) == 1000:
            yield _tsv_events(rows, source.page_size)
            rows = []
    if rows:
        yield _tsv_events(rows, source.page_size)


class TsvFormat:
    @hookimpl
    def migpolicy_trace_formats(self):
        return [TraceFormat("tsv", "test format", lambda head: head[:1].isdigit(), read_tsv)]


class CountingGenerator:
    @hookimpl
    def migpolicy_trace_generators(self):
        def generate(events, pages, seed, options):
            yield from (empty_events(0),)
            out = empty_events(events)
            out["t_ns"] = np.arange(events)
            out["page"] = np.arange(events) % pages
            yield out

        return [TraceGenerator("counting", "pages 0..n-1 in turn", generate)]


def test_trace_formats_and_generators_are_registered_and_read(pm, tmp_path: Path) -> None:
    assert "tsv" not in trace_formats(pm) and {"lackey", "damo"} <= set(trace_formats(pm))
    pm.register(TsvFormat(), name="tsv")
    pm.register(CountingGenerator(), name="counting")
    trace = tmp_path / "accesses.txt"
    trace.write_text("".join(f"{i * 10} {(i % 97) * 4096 + 8} {i % 2}\n" for i in range(2500)))
    opened = open_trace(trace, pm)  # detected from its content by the plugin's sniffer
    chunks = list(opened.chunks(800))
    assert [len(c) for c in chunks] == [800, 200, 800, 200, 500]
    assert opened.meta.distinct_pages == 97 and opened.meta.events == 2500
    events = np.concatenate(chunks)
    assert events["t_ns"][-1] == 24990 and events["page"][100] == 3
    gen = generated_trace(trace_generators(pm)["counting"], 10, 4, 0, {})
    assert np.concatenate(list(gen.chunks()))["page"].tolist() == [0, 1, 2, 3] * 2 + [0, 1]
