"""``migpolicy plugins``, ``-p MODULE`` and ``--help`` of every command, via the console script."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import click
import pytest

from migpolicy.cli.main import main

STAGE_HOOKS = {"migpolicy_isolate", "migpolicy_batch", "migpolicy_copy", "migpolicy_remap",
               "migpolicy_account"}


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple]:
    """Every command of the CLI as its words after ``migpolicy`` (the group itself first)."""
    paths = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # as --help lists them (importing lazy ones)
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def test_plugins_json(run_cli) -> None:
    code, out, err = run_cli("plugins", "--json")
    assert code == 0, err
    plugins = json.loads(out)
    assert isinstance(plugins, list) and plugins
    for plugin in plugins:
        assert set(plugin) == {"name", "version", "source", "hooks"}
        assert isinstance(plugin["hooks"], list)
        assert all(h.startswith("migpolicy_") for h in plugin["hooks"])
    names = [p["name"] for p in plugins]
    assert len(names) == len(set(names))
    builtins = [p for p in plugins if p["source"] == "builtin"]
    assert {"kernel_isolate", "kernel_batch", "kernel_remap", "engine_cpu", "engine_mt",
            "engine_dma", "engine_gpu", "auto_select", "account"} <= {p["name"] for p in builtins}
    implemented = {h for p in builtins for h in p["hooks"]}
    assert STAGE_HOOKS <= implemented
    assert {"migpolicy_copy_engines", "migpolicy_parameters",
            "migpolicy_hardware_profiles"} <= implemented


def test_plugins_text_lists_copy_engines(run_cli) -> None:
    code, out, err = run_cli("plugins")
    assert code == 0, err
    assert "kernel_isolate" in out
    engines = next(line for line in out.splitlines() if line.startswith("copy engines:"))
    for engine in ("cpu", "mt", "dma", "gpu", "auto"):
        assert engine in engines


def test_p_loads_a_module(run_cli, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fast_copy_test_engine.py").write_text(textwrap.dedent('''
        """A copy engine for the test: copies at a fixed 1 GB/s."""
        from migpolicy.engines import CopyEngine
        from migpolicy.hookspecs import hookimpl
        from migpolicy.plugins._pricing import cost_rows

        __version__ = "9.9"


        @hookimpl
        def migpolicy_copy_engines():
            return (CopyEngine(name="slowpoke", summary="1 GB/s", worker_unit="thread",
                               max_workers=lambda hw: 1),)


        @hookimpl
        def migpolicy_copy(batches, engine):
            if engine != "slowpoke":
                return None
            wall = batches.nbytes / 1e9
            return cost_rows(batches, wall_s=wall, cpu_s=wall)
    '''))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    code, out, err = run_cli("-p", "fast_copy_test_engine", "plugins", "--json")
    assert code == 0, err
    (mine,) = [p for p in json.loads(out) if p["name"] == "fast_copy_test_engine"]
    assert mine["source"] == "-p" and mine["version"] == "9.9"
    assert set(mine["hooks"]) == {"migpolicy_copy_engines", "migpolicy_copy"}
    code, out, err = run_cli("-p", "fast_copy_test_engine", "move", "--engine", "slowpoke",
                             "--bytes", "1G", "--folio", "2M", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data["engines_used"]) == {"slowpoke"}
    assert data["stages"]["copy"]["wall_s"] == pytest.approx((1 << 30) / 1e9)


@pytest.mark.parametrize(
    ("source", "needles"),
    [("import no_such_dependency_anywhere\n", ("broken_test_plugin", "failed to import")),
     ("from migpolicy.hookspecs import hookimpl\n\n"
      "@hookimpl\ndef migpolicy_isolat(folios):\n    return None\n",
      ("broken_test_plugin", "migpolicy_isolat", "migpolicy_isolate"))],
    ids=["does-not-import", "misspelt-hook"],
)
def test_broken_plugin_is_one_sentence(run_cli, tmp_path, monkeypatch, source, needles) -> None:
    (tmp_path / "broken_test_plugin.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    code, out, err = run_cli("-p", "broken_test_plugin", "plugins")
    assert code != 0 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


def test_command_tree_is_known() -> None:
    paths = command_paths()
    assert {(), ("plugins",), ("move",), ("hw",), ("hw", "list"), ("hw", "show"),
            ("hw", "fit"), ("tune",), ("policy", "kernel")} <= set(paths)


def test_a_command_imports_only_its_own_module() -> None:
    """Start-up imports the command that runs, not every other (they are looked up lazily)."""
    script = ("import sys\n"
              "from migpolicy.cli.main import main\n"
              "main(['policy', '--help'], standalone_mode=False)\n"
              "print(sorted(m for m in sys.modules if m.startswith('migpolicy.cli.')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    loaded = out.splitlines()[-1]
    assert "migpolicy.cli.policy" in loaded
    for other in ("move", "hw", "hw_calibrate", "hw_fit", "tune", "trace"):
        assert f"'migpolicy.cli.{other}'" not in loaded, other


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "migpolicy")
def test_every_command_help_teaches_by_example(run_cli, path: tuple[str, ...]) -> None:
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    assert out.startswith("Usage: migpolicy")
    assert "Example" in out, f"`migpolicy {' '.join(path)} --help` shows no example"


def test_short_help_option(run_cli) -> None:
    code, out, _ = run_cli("move", "-h")
    assert code == 0 and out.startswith("Usage: migpolicy move")


def test_version(run_cli) -> None:
    from migpolicy import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out


@pytest.mark.parametrize(("args", "named"), [
    (("move", "--engine", ""), "--engine"),
    (("move", "--hw="), "--hw"),
    (("hw", "show", ""), "the argument after 'show'"),
    (("hw", "validate", "gh200", "--against", ""), "--against"),
    (("hw", "calibrate", "--out", ""), "--out"),
    (("-p", "", "plugins"), "-p"),
])
def test_an_empty_value_is_a_usage_error_naming_the_option(run_cli, tmp_path, args,
                                                           named) -> None:
    code, out, err = run_cli(*args)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"Error: {named}: expected a value, got an empty string"


def test_ctrl_c_is_one_line_and_status_130(monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    """In process: KeyboardInterrupt inside any command becomes one line and status 130."""
    from migpolicy.context import Context

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Context, "price_uniform", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as caught:
            main(["move", "--bytes", "4M", "--json"])
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a second Ctrl-C: ignored
    finally:
        signal.signal(signal.SIGINT, handler)
    assert caught.value.code == 130
    out, err = capfd.readouterr()
    assert out == "" and err == "migpolicy: interrupted\n"


def test_ctrl_c_while_an_extension_imports_is_an_interrupt(monkeypatch: pytest.MonkeyPatch,
                                                          capfd) -> None:
    """Ctrl-C inside a C extension's import surfaces as ImportError caused by it: still 130."""
    from migpolicy.context import Context

    def importing(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(Context, "price_uniform", importing)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as caught:
            main(["move", "--bytes", "4M", "--json"])
    finally:
        signal.signal(signal.SIGINT, handler)
    assert caught.value.code == 130
    out, err = capfd.readouterr()
    assert out == "" and err == "migpolicy: interrupted\n"
