"""Fixtures for replay tests: small generated native traces, written once per session."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.traces import generated_trace, trace_generators, write_native

LACKEY = Path(__file__).resolve().parents[1] / "traces" / "data"


@pytest.fixture(scope="session")
def builtin_pm() -> pluggy.PluginManager:
    """Built-in plugins only."""
    return get_plugin_manager(entry_points=False)


def write_generated(pm: pluggy.PluginManager, path: Path, kind: str, events: int, pages: int,
                    **options) -> Path:
    """Write a generated trace to ``path`` in the native format."""
    trace = generated_trace(trace_generators(pm)[kind], events, pages, 1, options)
    with open(path, "wb") as handle:
        write_native(trace, handle)
    return path


@pytest.fixture(scope="session")
def phases_trace(tmp_path_factory, builtin_pm) -> Path:
    """A hot set of 10% of 4096 pages that moves 4 times; 4 M events 100 ns apart (0.4 s)."""
    path = tmp_path_factory.mktemp("replay") / "phases.mpt"
    return write_generated(builtin_pm, path, "phases", 4_000_000, 4096, interval_ns=100)


@pytest.fixture(scope="session")
def zipf_trace(tmp_path_factory, builtin_pm) -> Path:
    """A fixed zipf hot set over 512 pages, 200 k events."""
    path = tmp_path_factory.mktemp("replay") / "zipf.mpt"
    return write_generated(builtin_pm, path, "zipf", 200_000, 512, interval_ns=1000)
