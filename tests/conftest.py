"""Shared fixtures: a plugin manager, validated run contexts, the console script, profile copies.

Every test runs with ``MIGPOLICY_PROFILE_DIR`` pointing at an empty directory
and without the plugin environment variables, so profiles calibrated by the
user or a plugin allow-list of the shell never change what a test sees.

The session also records which hooks migpolicy's own code calls (a call made
from a module of the ``migpolicy`` package, not from a test), for the
meta-test in ``test_docs.py`` that every hook is exercised through migpolicy;
that test runs last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migpolicy.context import Context, build_context
from migpolicy.hardware.locations import shipped_dir
from migpolicy.plugin_manager import get_plugin_manager

#: Hook names called from migpolicy's own modules during this session.
HOOKS_CALLED: set[str] = set()
#: Test files collected in this session (the meta-test needs the whole suite).
COLLECTED_FILES: set[Path] = set()
LAST_TESTS = ("test_every_hook_is_called_through_migpolicy",)


def _recording(method: Callable) -> Callable:
    def record(self: pluggy.HookCaller, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("migpolicy.") and self.name.startswith("migpolicy_"):
            HOOKS_CALLED.add(self.name)
        return method(self, *args, **kwargs)

    return record


def pytest_configure(config: pytest.Config) -> None:
    config.migpolicy_hooks_called = HOOKS_CALLED  # read by the meta-test
    config.migpolicy_collected_files = COLLECTED_FILES
    pluggy.HookCaller.__call__ = _recording(pluggy.HookCaller.__call__)
    pluggy.HookCaller.get_hookimpls = _recording(pluggy.HookCaller.get_hookimpls)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    COLLECTED_FILES.update(Path(item.path).resolve() for item in items)
    items.sort(key=lambda item: item.name in LAST_TESTS)


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


@pytest.fixture(scope="session")
def phases_trace(tmp_path_factory: pytest.TempPathFactory,
                 migpolicy_exe: str) -> Callable[[str, int], Path]:
    """``make(events, pages)`` → a ``phases`` trace written by ``migpolicy trace gen``
    (events 100 ns apart), made once per size in the session."""
    made: dict[tuple[str, int], Path] = {}

    def make(events: str, pages: int) -> Path:
        if (events, pages) not in made:
            path = tmp_path_factory.mktemp("phases") / f"phases-{events}-{pages}.mpt"
            subprocess.run([migpolicy_exe, "trace", "gen", "phases", "--out", str(path),
                            "--events", events, "--pages", str(pages), "--param",
                            "interval_ns=100"], check=True, capture_output=True)
            made[events, pages] = path
        return made[events, pages]

    return make


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


@pytest.fixture(scope="session")
def postgres_url() -> Any:
    """URL of a PostgreSQL server for shared-storage tests: ``$MIGPOLICY_TEST_POSTGRES``, or a
    throwaway one started here; skipped when neither can be had (never in CI)."""
    from migpolicy.testing.postgres import URL_VARIABLE, start_server, stop_server

    if os.environ.get(URL_VARIABLE):
        yield os.environ[URL_VARIABLE]
        return
    try:
        server = start_server()
    except (RuntimeError, OSError, KeyError) as exc:  # KeyError: no postgres system user
        if os.environ.get("CI"):
            pytest.fail(f"CI must test PostgreSQL storage: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield server.url
    finally:
        stop_server(server.folder)


@st.composite
def touched_pages(draw, max_pages: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Hypothesis: (pages of a trace, the ascending distinct ones an epoch touched, each
    page's node: 0 fast or 1 slow)."""
    npages = draw(st.integers(1, max_pages))
    pages = np.asarray(sorted(draw(st.sets(st.integers(0, npages - 1), min_size=1))),
                       dtype=np.int64)
    node_of = draw(hnp.arrays(np.int8, npages, elements=st.sampled_from([0, 1])))
    return npages, pages, node_of

