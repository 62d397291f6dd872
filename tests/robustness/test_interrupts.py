"""Ctrl-C (SIGINT, once or twice) at random moments of every long command (conftest.py).

Each trial must end within :data:`EXIT_WITHIN_S` of the first signal with
status 130, one line on stderr and no traceback, nothing on stdout (or, when the
signal comes while the finished result is being written, that whole result and
status 0), no file
in the output folder, and no process left in its process group (worker
threads and processes shut down). The moments come from a seeded generator,
printed with every failure so that a trial can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Longest time from the first SIGINT to the process's exit, on a busy two-core machine.
EXIT_WITHIN_S = 2.0
#: Trials per long command; each sends SIGINT between 0.3 s after start and ``LATEST_S``.
TRIALS = 3
LATEST_S = 1.6


def _interrupt_once(argv: list[str], folder: Path, delay: float, signals: int) -> dict:
    env = dict(os.environ, MIGPOLICY_PROFILE_DIR=str(folder / "profiles"), COLUMNS="200")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=folder, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    time.sleep(delay)
    if proc.poll() is not None:  # finished first: not a trial of an interrupt
        out, err = proc.communicate()
        return {"finished_first": True, "code": proc.returncode, "err": err}
    sent = time.perf_counter()
    for i in range(signals):
        if i:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    took = time.perf_counter() - sent
    try:
        os.killpg(proc.pid, 0)
        leftover = True
    except ProcessLookupError:
        leftover = False
    return {"finished_first": False, "code": proc.returncode, "out": out, "err": err,
            "took": took, "leftover": leftover,
            "files": sorted(p.name for p in folder.iterdir() if p.name != "profiles")}


@pytest.fixture(params=range(TRIALS), ids=lambda i: f"trial{i}")
def trial(request: pytest.FixtureRequest) -> tuple[float, int, int]:
    """(delay in seconds, number of SIGINTs, seed) of one trial."""
    seed = int(os.environ.get("MIGPOLICY_INTERRUPT_SEED", "0")) * 1000 + request.param
    rng = random.Random(seed)
    return rng.uniform(0.3, LATEST_S), 1 + request.param % 2, seed


def test_ctrl_c_ends_a_long_command_promptly_and_cleanly(long_command, trial, migpolicy_exe,
                                                         tmp_path: Path) -> None:
    delay, signals, seed = trial
    (tmp_path / "profiles").mkdir()
    argv = [migpolicy_exe, *(a.replace("{output}", str(tmp_path / "out.yaml"))
                             for a in long_command.argv)]
    result = _interrupt_once(argv, tmp_path, delay, signals)
    shown = f"seed {seed}: {signals} SIGINT after {delay:.2f} s: {result}"
    if result["finished_first"]:
        assert result["code"] == 0, shown
        pytest.skip(f"finished before the signal ({shown})")
    if result["code"] == 0:  # the signal came while the finished result was being written
        json.loads(result["out"])  # whole: never half a document
        pytest.skip(f"finished while the signal came ({shown[:200]})")
    assert result["code"] == 130, shown
    assert result["took"] < EXIT_WITHIN_S, shown
    assert "Traceback" not in result["err"], shown
    assert result["err"].strip().splitlines()[-1:] == ["migpolicy: interrupted"], shown
    assert [line for line in result["err"].splitlines()
            if not line.startswith("note:")] == ["migpolicy: interrupted"], shown
    assert result["out"] == "", shown
    assert result["files"] == [], shown
    assert not result["leftover"], shown


def _move_with_isolate_hook(body: str, migpolicy_exe: str,
                            tmp_path: Path) -> subprocess.CompletedProcess:
    """``migpolicy move --bytes 4M --json`` with a plugin whose isolate hook runs ``body``
    (Python lines, indented for the hook; ``os``, ``pathlib``, ``signal`` and ``time`` imported)."""
    (tmp_path / "ctrl_c_plugin.py").write_text(
        "import os, pathlib, signal, time\n"
        "from migpolicy.contract import hookimpl\n\n\n"
        "@hookimpl(tryfirst=True)\n"
        "def migpolicy_isolate(folios, hw):\n" + body)
    return subprocess.run([migpolicy_exe, "-p", "ctrl_c_plugin", "move", "--bytes", "4M",
                           "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))


def test_an_error_caused_by_ctrl_c_inside_c_code_is_an_interrupt(migpolicy_exe, tmp_path: Path):
    """Ctrl-C inside C code (a compiled loop, an extension's start-up) comes back as another
    error caused by the KeyboardInterrupt: the command still ends as interrupted."""
    done = _move_with_isolate_hook(
        "    raise SystemError('returned a result with an exception set') "
        "from KeyboardInterrupt()\n", migpolicy_exe, tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "migpolicy: interrupted"
    assert done.stdout == ""


def test_a_second_ctrl_c_does_not_cut_short_the_clean_up_after_the_first(migpolicy_exe,
                                                                        tmp_path: Path):
    """Ctrl-C twice in quick succession: the clean-up the first started runs to its end,
    and the command still ends as interrupted, in one line."""
    done = _move_with_isolate_hook(
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(30)\n"
        "    except KeyboardInterrupt:\n"
        "        os.kill(os.getpid(), signal.SIGINT)  # the second, during the clean-up\n"
        "        time.sleep(0.2)\n"
        "        pathlib.Path('cleaned-up').write_text('yes')\n"
        "        raise\n", migpolicy_exe, tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "migpolicy: interrupted"
    assert done.stdout == ""
    assert (tmp_path / "cleaned-up").read_text() == "yes"


def _run_with_ctrl_c_in(hook: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``migpolicy move --bytes 4M --json`` through the console script's entry point, with
    ``hook`` (Python lines) patched into click's steps around the command to send a Ctrl-C."""
    script = tmp_path / "ctrl_c_in_click.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "import click\n"
        "from migpolicy.cli import run\n\n\n"
        "def ctrl_c():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.2)\n\n\n"
        f"{hook}\n"
        "sys.argv = ['migpolicy', 'move', '--bytes', '4M', '--json']\n"
        "run()\n")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)


def test_ctrl_c_while_click_parses_the_command_line_is_an_interrupt(tmp_path: Path):
    done = _run_with_ctrl_c_in(
        "parse = click.Group.parse_args\n\n\n"
        "def parse_with_ctrl_c(self, ctx, args):\n"
        "    if ctx.parent is None:\n"
        "        ctrl_c()\n"
        "    return parse(self, ctx, args)\n\n\n"
        "click.Group.parse_args = parse_with_ctrl_c\n", tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "migpolicy: interrupted"  # after a blank line closing "^C"
    assert done.stdout == ""


def test_ctrl_c_after_the_command_returned_leaves_it_finished(tmp_path: Path):
    done = _run_with_ctrl_c_in(
        "close = click.Context.close\n\n\n"
        "def close_with_ctrl_c(self):\n"
        "    if self.parent is None:  # click closes the top context after the command\n"
        "        ctrl_c()\n"
        "    close(self)\n\n\n"
        "click.Context.close = close_with_ctrl_c\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["folios"] > 0
