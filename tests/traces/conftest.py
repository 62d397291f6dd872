"""Fixtures for trace tests: the checked-in recordings and the shared DAMON data."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from migpolicy.plugin_manager import get_plugin_manager

DATA = Path(__file__).resolve().parent / "data"
DAMO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "damo"


@pytest.fixture(scope="session")
def builtin_pm() -> pluggy.PluginManager:
    """Built-in plugins only (the trace formats and generators every install has)."""
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def damo_dir() -> Path:
    """The shared DAMON recordings (skip when this checkout has none beside it)."""
    if not (DAMO / "damon.data").is_file():
        pytest.skip(f"no shared DAMON data at {DAMO}")
    return DAMO
