"""Shared fixtures: a plugin manager, validated run contexts, the console script, profile copies.

Every test runs with ``MIGPOLICY_PROFILE_DIR`` pointing at an empty directory
and without the plugin environment variables, so profiles calibrated by the
user or a plugin allow-list of the shell never change what a test sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest

from migpolicy.context import Context, build_context
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.plugins.profiles import shipped_dir


@pytest.fixture(autouse=True)
def user_profile_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point the user profile directory at an empty folder (returned); drop plugin variables."""
    empty = tmp_path_factory.mktemp("user-profiles")
    monkeypatch.setenv("MIGPOLICY_PROFILE_DIR", str(empty))
    monkeypatch.delenv("MIGPOLICY_PLUGINS", raising=False)
    monkeypatch.delenv("MIGPOLICY_TRACE_HOOKS", raising=False)
    return empty


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh plugin manager with the built-in and installed plugins."""
    return get_plugin_manager()


@pytest.fixture
def ctx_for(pm: pluggy.PluginManager) -> Callable[..., Context]:
    """Factory: ``ctx_for(hw=None, params=None, **more)`` → a validated :class:`Context`.

    ``params`` takes dotted keys (``{"mt.placement": "fill"}``); keyword
    arguments add plain ones (``engine="mt", workers=8``).
    """

    def make(
        hw: str | None = None, params: Mapping[str, Any] | None = None, **more: Any
    ) -> Context:
        return build_context(pm=pm, hw=hw, params={**(params or {}), **more})

    return make


def _console_script() -> str:
    beside = Path(sys.executable).with_name("migpolicy")
    if beside.exists():
        return str(beside)
    found = shutil.which("migpolicy")
    if found is None:
        pytest.fail("the migpolicy console script is not installed (pip install -e .)")
    return found


@pytest.fixture(scope="session")
def migpolicy_exe() -> str:
    """Path of the installed ``migpolicy`` console script."""
    return _console_script()


@pytest.fixture
def run_cli(migpolicy_exe: str) -> Callable[..., tuple[int, str, str]]:
    """Run ``migpolicy ARGS...`` as a user would; return (returncode, stdout, stderr)."""

    def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
        env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
        proc = subprocess.run(
            [migpolicy_exe, *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture
def profile_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``profile_dir(name, edit=None)`` copies a shipped profile into a temp folder.

    ``edit`` (text → text) changes the copy, for tests of bad profiles;
    returns the copy's path. The copies live in ``tmp_path / "profiles"``.
    """
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)

    def copy(name: str = "zen3-epyc-ptdma", edit: Callable[[str], str] | None = None,
             filename: str | None = None) -> Path:
        text = (shipped_dir() / f"{name}.yaml").read_text(encoding="utf-8")
        if edit is not None:
            changed = edit(text)
            assert changed != text, f"the edit did not change profile {name}"
            text = changed
        path = folder / (filename or f"{name}.yaml")
        path.write_text(text, encoding="utf-8")
        return path

    return copy
