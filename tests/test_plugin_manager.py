"""The plugin manager: built-ins, ``-p MODULE``, entry points and their allow-list, errors, tracing.

Plugins under test are real modules written to a temporary directory put on
``sys.path`` (in-process) or ``PYTHONPATH`` (for the ``migpolicy`` command);
entry points come from a real ``.dist-info`` directory there.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from migpolicy import __version__
from migpolicy.context import build_context, copy_engines
from migpolicy.errors import PluginError
from migpolicy.pipeline import STAGES, price_uniform
from migpolicy.plugin_manager import (
    BUILTIN_PLUGINS,
    call_hook,
    get_plugin_manager,
    plugin_infos,
)

WritePlugin = Callable[[str, str], str]
Cli = Callable[..., subprocess.CompletedProcess]

RAISING = """
    from migpolicy.hookspecs import hookimpl

    @hookimpl(tryfirst=True)
    def migpolicy_copy(batches, engine):
        raise RuntimeError("copy engine on fire")
"""

MISSPELT = """
    from migpolicy.hookspecs import hookimpl

    @hookimpl
    def migpolicy_coppy(batches, engine, hw, params):
        return None
"""

FLAT_ENGINE = """
    import numpy as np
    from migpolicy.costs import zero_costs
    from migpolicy.engines import CopyEngine
    from migpolicy.hookspecs import hookimpl

    __version__ = "3.1"

    @hookimpl
    def migpolicy_copy_engines():
        return (CopyEngine("flat", "one microsecond per folio", "thread", lambda hw: 1,
                           modelled_only="test engine"),)

    @hookimpl
    def migpolicy_copy(batches, engine):  # a subset of the hook's arguments
        if engine != "flat":
            return None
        rows = zero_costs(batches.n_batches)
        rows["wall_s"] = rows["cpu_s"] = batches.nfolios * 1e-6
        rows["bytes"], rows["folios"] = batches.nbytes, batches.nfolios
        return rows
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for plugin modules; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("tplug_"):
            del sys.modules[name]


@pytest.fixture
def write_plugin(plugin_dir: Path) -> WritePlugin:
    """Write a plugin module ``name`` with ``source``; returns its name."""

    def write(name: str, source: str) -> str:
        (plugin_dir / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return name

    return write


@pytest.fixture
def cli(migpolicy_exe: str, plugin_dir: Path) -> Cli:
    """Run ``migpolicy ARGS`` with ``plugin_dir`` on PYTHONPATH; keywords set environment."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        path = os.pathsep.join(filter(None, [str(plugin_dir), os.environ.get("PYTHONPATH")]))
        return subprocess.run([migpolicy_exe, *args], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": path, **env}, timeout=120)

    return run


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- built-ins and -p ------------------------------------------------------------------


def test_builtins_are_registered_with_every_stage_hook(plugin_dir: Path) -> None:
    infos = plugin_infos(get_plugin_manager(entry_points=False))
    assert [i.name for i in infos] == [m.rsplit(".", 1)[1] for m in BUILTIN_PLUGINS]
    assert {(i.source, i.version) for i in infos} == {("builtin", __version__)}
    hooks = {hook for info in infos for hook in info.hooks}
    assert {f"migpolicy_{stage}" for stage in STAGES} <= hooks
    assert {"cpu", "mt", "dma", "gpu"} <= set(copy_engines(get_plugin_manager()))


def test_p_loads_a_module(write_plugin: WritePlugin) -> None:
    name = write_plugin("tplug_flat", FLAT_ENGINE)
    pm = get_plugin_manager([name], entry_points=False)
    info = {i.name: i for i in plugin_infos(pm)}[name]
    assert (info.source, info.version) == ("-p", "3.1")
    assert set(info.hooks) == {"migpolicy_copy", "migpolicy_copy_engines"}
    assert copy_engines(pm)["flat"].summary == "one microsecond per folio"


def test_p_on_the_command_line(write_plugin: WritePlugin, cli: Cli) -> None:
    name = write_plugin("tplug_cli", FLAT_ENGINE)
    result = cli("-p", name, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed[name]["source"] == "-p" and listed[name]["version"] == "3.1"
    moved = cli("-p", name, "move", "--bytes", "8M", "--folio", "4K",
                 "--engine", "flat", "--json")
    assert moved.returncode == 0, moved.stderr
    data = json.loads(moved.stdout)
    assert data["engine"] == "flat"
    assert data["stages"]["copy"]["wall_s"] == pytest.approx(2048 * 1e-6)


def test_subset_of_arguments_works(write_plugin: WritePlugin) -> None:
    name = write_plugin("tplug_subset", FLAT_ENGINE)
    run = build_context(plugins=[name], params={"engine": "flat"})
    report = price_uniform(run.pm, 4096, 1000, run.hw, run.params)
    assert report.engines["flat"].wall_s == pytest.approx(1000 * 1e-6)
    assert report.folios == 1000


# -- errors ------------------------------------------------------------------------


def test_missing_module_names_it(plugin_dir: Path) -> None:
    with pytest.raises(PluginError, match=r"plugin module 'tplug_absent' \(-p\) failed to "
                                          r"import: ModuleNotFoundError"):
        get_plugin_manager(["tplug_absent"], entry_points=False)


def test_module_failing_at_import_names_it(write_plugin: WritePlugin, cli: Cli) -> None:
    name = write_plugin("tplug_broken", "import numpy\nraise ImportError('needs libfoo')\n")
    with pytest.raises(PluginError, match=r"'tplug_broken'.*ImportError: needs libfoo"):
        get_plugin_manager([name], entry_points=False)
    line = _one_line_error(cli("-p", name, "plugins"))
    assert "tplug_broken" in line and "needs libfoo" in line


def test_misspelt_hook_suggests_the_right_one(write_plugin: WritePlugin, cli: Cli) -> None:
    name = write_plugin("tplug_typo", MISSPELT)
    expected = ("plugin 'tplug_typo' implements 'migpolicy_coppy', which is not a migpolicy "
                "hook; did you mean migpolicy_copy?")
    with pytest.raises(PluginError) as caught:
        get_plugin_manager([name], entry_points=False)
    assert str(caught.value) == expected
    assert _one_line_error(cli("-p", name, "move")) == f"Error: {expected}"


def test_unknown_argument_names_hook_and_argument(write_plugin: WritePlugin) -> None:
    name = write_plugin("tplug_args", """
        from migpolicy.hookspecs import hookimpl

        @hookimpl
        def migpolicy_remap(batches, hardware):
            return None
    """)
    with pytest.raises(PluginError) as caught:
        get_plugin_manager([name], entry_points=False)
    assert str(caught.value) == (
        "plugin 'tplug_args' implements migpolicy_remap with argument(s) 'hardware' that the "
        "hook does not pass (it passes batches, hw, params)"
    )


def test_raising_plugin_is_named_with_its_hook(write_plugin: WritePlugin) -> None:
    name = write_plugin("tplug_fire", RAISING)
    run = build_context(plugins=[name])
    with pytest.raises(PluginError) as caught:
        price_uniform(run.pm, 4096, 10, run.hw, run.params)
    assert str(caught.value) == (
        "plugin 'tplug_fire' raised RuntimeError in hook migpolicy_copy: copy engine on fire"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(PluginError, match="'tplug_fire' raised RuntimeError in hook migpolicy"):
        call_hook(run.pm, "migpolicy_copy", batches=None, engine="cpu", hw=run.hw,
                  params=run.params)


def test_raising_plugin_on_the_command_line(write_plugin: WritePlugin, cli: Cli) -> None:
    name = write_plugin("tplug_badplugin", RAISING)
    line = _one_line_error(cli("-p", name, "move", "--bytes", "4M", "--json"))
    assert line == ("Error: plugin 'tplug_badplugin' raised RuntimeError in hook "
                    "migpolicy_copy: copy engine on fire")


# -- entry points ------------------------------------------------------------------------


@pytest.fixture
def entry_points(write_plugin: WritePlugin, plugin_dir: Path) -> Path:
    """A distribution ``tplugs`` 2.5 registering alpha, beta and a broken gamma."""
    write_plugin("tplug_alpha", FLAT_ENGINE)
    write_plugin("tplug_beta", "from migpolicy.hookspecs import hookimpl\n")
    dist = plugin_dir / "tplugs-2.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tplugs\nVersion: 2.5\n")
    (dist / "entry_points.txt").write_text(
        "[migpolicy]\nalpha = tplug_alpha\nbeta = tplug_beta\ngamma = tplug_missing\n"
    )
    importlib.invalidate_caches()
    return plugin_dir


def _entry_point_names(pm) -> dict[str, str]:
    return {i.name: i.version for i in plugin_infos(pm) if i.source == "entry point"}


def test_entry_points_load_and_fail_by_name(entry_points: Path) -> None:
    with pytest.raises(PluginError, match=r"plugin 'gamma' \(entry point tplug_missing\) "
                                          r"failed to import: ModuleNotFoundError"):
        get_plugin_manager()
    assert _entry_point_names(get_plugin_manager(entry_points=False)) == {}


def test_allow_list_picks_entry_points(entry_points: Path, cli: Cli,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGPOLICY_PLUGINS", "alpha")
    assert _entry_point_names(get_plugin_manager()) == {"alpha": "2.5"}
    monkeypatch.setenv("MIGPOLICY_PLUGINS", " beta , alpha ")
    assert _entry_point_names(get_plugin_manager()) == {"alpha": "2.5", "beta": "2.5"}
    result = cli("plugins", "--json", MIGPOLICY_PLUGINS="beta")
    assert result.returncode == 0, result.stderr
    sources = {p["name"]: p["source"] for p in json.loads(result.stdout)}
    assert sources["beta"] == "entry point" and "alpha" not in sources


# -- tracing -------------------------------------------------------------------------


TRACE_LINE = re.compile(r"^migpolicy: hook (migpolicy_\w+) \[([\w,]+)\] (\d+\.\d) us$")


def test_trace_hooks_logs_calls_with_durations(plugin_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    quiet = get_plugin_manager(entry_points=False)
    call_hook(quiet, "migpolicy_copy_engines")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("MIGPOLICY_TRACE_HOOKS", "1")
    pm = get_plugin_manager(entry_points=False)
    engines = call_hook(pm, "migpolicy_copy_engines")
    assert len(engines) == 6
    (line,) = capsys.readouterr().err.splitlines()
    hook, impls, _ = TRACE_LINE.match(line).groups()
    assert hook == "migpolicy_copy_engines"
    assert set(impls.split(",")) == {"engine_cpu", "engine_mt", "engine_dma", "engine_gpu",
                                     "engine_dsa", "engine_sdxi"}


def test_trace_hooks_on_the_command_line(cli: Cli) -> None:
    result = cli("move", "--bytes", "4M", "--json", MIGPOLICY_TRACE_HOOKS="1")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # the trace stays off stdout
    calls = [TRACE_LINE.match(line) for line in result.stderr.splitlines()]
    assert all(calls), result.stderr
    traced = [m.group(1) for m in calls]
    stages = [hook for hook in traced if hook.removeprefix("migpolicy_") in STAGES]
    assert stages == [f"migpolicy_{stage}" for stage in STAGES]
