"""The example plugin package under examples/ installs with pip and is found by its entry point.

pip installs a copy of the package into a temporary directory (``--target``)
that the commands below see on ``PYTHONPATH``: the test environment gains the
plugin while the shared site-packages, and every other test run using it, stays
unchanged, and nothing needs uninstalling afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import setuptools

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "migpolicy-nt-copy"
HOOKS = {"migpolicy_copy", "migpolicy_copy_engines", "migpolicy_parameters"}


def _build_isolation_flags() -> list[str]:
    """Build in this environment when its setuptools can make wheels (fast, offline)."""
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if importlib.util.find_spec("wheel") or (major, minor) >= (70, 1):
        return ["--no-build-isolation"]
    return []


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables under which the example plugin is installed."""
    root = tmp_path_factory.mktemp("example")
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    site = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input",
         *_build_isolation_flags(), "--target", str(site), str(source)],
        capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (site / "migpolicy_nt_copy.py").exists()
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    out = {k: v for k, v in os.environ.items() if not k.startswith("MIGPOLICY_")}
    return {**out, "PYTHONPATH": path, "MIGPOLICY_PROFILE_DIR": str(root / "profiles"),
            "EXAMPLE_SOURCE": str(source)}


@pytest.fixture
def run(migpolicy_exe: str) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``migpolicy ARGS`` in the environment ``env``."""

    def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([migpolicy_exe, *args], capture_output=True, text=True, env=env,
                              timeout=120)

    return run


def test_plugins_lists_nt_from_its_entry_point(env: dict[str, str], run) -> None:
    result = run(env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["nt"]["source"] == "entry point"
    assert plugins["nt"]["version"] == "0.1.0"
    assert set(plugins["nt"]["hooks"]) == HOOKS
    assert plugins["engine_cpu"]["source"] == "builtin"


def test_move_prices_with_nt(env: dict[str, str], run) -> None:
    def move(engine: str, *extra: str) -> dict:
        result = run(env, "move", "--bytes", "1G", "--folio", "2M", "--engine", engine,
                     *extra, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    nt, cpu = move("nt"), move("cpu")
    assert nt["engine"] == "nt" and nt["workers"] == 1
    assert nt["bytes"] == 1 << 30 and nt["folios"] == 512
    assert nt["throughput_gbps"] > cpu["throughput_gbps"]  # default factor 1.3
    faster = move("nt", "--param", "nt.bandwidth_factor=1.5")
    assert faster["stages"]["copy"]["wall_s"] < nt["stages"]["copy"]["wall_s"]
    same = move("nt", "--param", "nt.bandwidth_factor=1.0")
    assert same["stages"]["copy"]["wall_s"] == pytest.approx(cpu["stages"]["copy"]["wall_s"])
    assert same["stages"]["remap"] == cpu["stages"]["remap"]


def test_allow_list_leaves_nt_out(env: dict[str, str], run) -> None:
    result = run({**env, "MIGPOLICY_PLUGINS": "some-other-plugin"}, "move", "--engine", "nt")
    assert result.returncode == 1
    assert "unknown copy engine" in result.stderr and "Traceback" not in result.stderr
    listed = run({**env, "MIGPOLICY_PLUGINS": "nt"}, "plugins", "--json")
    assert "nt" in {p["name"] for p in json.loads(listed.stdout)}


def test_example_passes_its_conformance_test(env: dict[str, str]) -> None:
    source = Path(env["EXAMPLE_SOURCE"])
    result = subprocess.run(  # from outside the source, so the installed module is tested
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source)],
        capture_output=True, text=True, env=env, cwd=source.parent, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def test_auto_picks_nt_where_it_is_cheapest(env: dict[str, str], run) -> None:
    """Installed, nt is one more engine auto prices; it wins where its fast thread is cheapest."""
    def move(*args: str) -> dict:
        result = run(env, "move", "--hw", "zen3-epyc-ptdma-6.14", "--bytes", "64K", "--folio",
                     "4K", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    chosen = move("--engine", "auto")
    priced = {engine: move("--engine", engine)["total_s"] for engine in ("cpu", "nt")}
    assert list(chosen["engines_used"]) == ["nt"]
    assert chosen["total_s"] == pytest.approx(priced["nt"]) and priced["nt"] < priced["cpu"]
    without = run({**env, "MIGPOLICY_PLUGINS": "none"}, "move", "--bytes", "64K", "--folio",
                  "4K", "--engine", "auto", "--json")
    assert "nt" not in json.loads(without.stdout)["engines_used"]
