"""The robustness harness: every command that reads or writes a file, against bad files.

:data:`COMMANDS` lists each such command once, as the words a user types, with
``{input}`` where the file under test goes and ``{output}`` where an output
path goes; ``reads`` says what kind of file ``{input}`` expects (a key of
:data:`SAMPLES`). A new command joins the harness with one line here.
``pytest_generate_tests`` crosses each command with the generated corpus of
malformed inputs (:data:`BAD_INPUTS`) or bad destinations (:data:`BAD_OUTPUTS`);
the cases run concurrently once per session (:func:`outcomes`), each in its
own folder, and every test then checks one case's outcome.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from migpolicy.files import MAX_TEXT_BYTES
from migpolicy.hardware.locations import shipped_dir
from migpolicy.hardware.tables import shipped_table

#: A real lackey trace of the test data, as a valid input for the commands that write one.
LACKEY_TRACE = Path(__file__).resolve().parents[1] / "traces" / "data" / "true.lackey.gz"
#: A longer one (997,090 lines of `sort`): replaying it in small epochs takes a few seconds.
SORT_TRACE = LACKEY_TRACE.with_name("sort.lackey.xz")

#: A calibration small enough to finish in about a second when it does run.
TINY_CALIBRATION = ("--quick", "--engines", "cpu", "--sizes", "64K", "--counts", "8",
                    "--samples", "2", "--max-bytes", "1M")


@dataclass(frozen=True)
class Command:
    """One command under test: its words, and what its ``{input}`` expects."""

    argv: tuple[str, ...]
    reads: str | None = None
    #: Extra bad destinations only this command has (e.g. an unknown image format).
    bad_outputs: tuple[str, ...] = ()
    #: Destinations of BAD_OUTPUTS that are good for this command (an empty directory for a
    #: report directory).
    good_outputs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """A readable test id: the words up to the first option."""
        words = []
        for word in self.argv:
            if word in ("{input}", "{output}"):
                words.append(word)
                break
            words.append(Path(word).name if word.startswith("/") else word)
        return " ".join(words)


# One line per command that reads ({input}) or writes ({output}) a file. Every command
# runs with --json: under it, nothing may reach stdout when the command fails. (Options that
# read a profile all go through one lookup, tested once per command: `hw learn --base` is
# covered by `hw validate PROFILE`, and the option names by tests/hardware/test_registry.py.)
COMMANDS: tuple[Command, ...] = (
    Command(("move", "--hw", "{input}", "--bytes", "4M", "--json"), reads="profile"),
    Command(("hw", "show", "{input}", "--json"), reads="profile"),
    Command(("hw", "validate", "{input}", "--against", "2", "--json"), reads="profile"),
    Command(("hw", "validate", "zen3-epyc-ptdma", "--against", "{input}", "--json"),
            reads="table"),
    Command(("hw", "validate", "zen3-epyc-ptdma", "--against", "2", "--learned-model",
             "{input}", "--json"), reads="model"),
    Command(("hw", "validate", "zen3-epyc-ptdma", "--against", "2", "--plot", "{output}",
             "--json"), bad_outputs=("plot.unknown-format",)),
    Command(("hw", "fit", "--base", "zen3-epyc-ptdma", "--table", "{input}", "--out",
             "fitted.yaml", "--json"), reads="table"),
    Command(("hw", "fit", "--base", "zen3-epyc-ptdma", "--table", str(shipped_table("2")),
             "--out", "{output}", "--json")),
    Command(("hw", "learn", "--base", "zen3-epyc-ptdma", "--table", "{input}", "--out",
             "learned.yaml", "--json"), reads="table"),
    Command(("hw", "learn", "--base", "zen3-epyc-ptdma", "--table", str(shipped_table("2")),
             "--out", "{output}", "--json")),
    Command(("hw", "calibrate", *TINY_CALIBRATION, "--out", "{output}", "--json")),
    Command(("trace", "convert", "{input}", "out.mpt", "--json"), reads="trace"),
    Command(("trace", "info", "{input}", "--json"), reads="trace"),
    Command(("trace", "plot", "{input}", "--out", "plot.png"), reads="trace"),
    Command(("trace", "convert", str(LACKEY_TRACE), "{output}", "--json")),
    Command(("trace", "gen", "zipf", "--events", "1000", "--out", "{output}", "--json")),
    Command(("tune", str(LACKEY_TRACE), "--trials", "1", "--export", "{output}", "--json")),
    Command(("tune", str(LACKEY_TRACE), "--trials", "1", "--report", "{output}", "--json"),
            good_outputs=("a-directory",)),
    Command(("replay", "{input}", "--json"), reads="trace"),
    Command(("replay", str(LACKEY_TRACE), "--policy", "{input}", "--json"), reads="policy"),
    Command(("policy", "kernel", "{input}", "--json"), reads="policy"),
    Command(("replay", str(LACKEY_TRACE), "--report", "{output}", "--json"),
            good_outputs=("a-directory",)),
)

# One line per long command: Ctrl-C must end it promptly, with nothing half-written to
# {output} (a fresh folder's file) and nothing on stdout. Each runs several seconds here.
LONG_COMMANDS: tuple[Command, ...] = (
    Command(("hw", "calibrate", "--quick", "--engines", "cpu,mt", "--out", "{output}",
             "--json")),
    Command(("move", "--hw", "local", "--bytes", "512M", "--folio", "2M", "--engine", "mt",
             "--workers", "2", "--execute", "--json")),
    Command(("trace", "gen", "zipf", "--events", "50M", "--out", "{output}", "--json")),
    Command(("replay", str(SORT_TRACE), "--compare", "none,numab,hist,damos", "--epoch", "20",
             "--json")),
)

#: A well-formed file of each kind that ``reads`` names: the base of the corpus.
SAMPLES: dict[str, Callable[[], bytes]] = {
    "profile": lambda: (shipped_dir() / "zen3-epyc-ptdma.yaml").read_bytes(),
    "table": lambda: shipped_table("2").read_bytes(),
    "model": lambda: b"PK\x03\x04" + bytes(range(256)) * 4,  # a zip header, then junk
    "policy": lambda: b"placement: numab\nplacement.demotion: watermark\n"
                      b"numab.rate_limit_mbps: 64\nengine: auto\n",
    "trace": lambda: b"==7== Lackey, an example Valgrind tool\n" + b"".join(
        b"I  0400%04x,3\n L 1ffefff%03x,8\n S 0402%04x,4\n M 0403%04x,8\n" % (i, i, i, i)
        for i in range(400)),
}


def _billion_laughs() -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode()


def _replace_number(sample: bytes, value: str) -> bytes:
    """``sample`` with its first number after a ``: `` or ``,`` replaced by ``value``."""
    import re

    return re.sub(rb"(?<=[:,] )-?[0-9][0-9.e+-]*|(?<=,)[0-9][0-9.e+-]*", value.encode(), sample,
                  count=3)


def _write(data: bytes) -> Callable[[Path, bytes], None]:
    return lambda path, sample: path.write_bytes(data)


def _sparse(path: Path, sample: bytes) -> None:
    with path.open("wb") as handle:
        handle.truncate(MAX_TEXT_BYTES + 1)


#: name → writer(path, sample of the expected kind). Together: the ways a file goes wrong.
#: (UTF-16 and missing files are covered by the unit tests of the reader and the YAML
#: loader and by each command's own tests; here one wrong encoding per command is enough.)
BAD_INPUTS: dict[str, Callable[[Path, bytes], None]] = {
    "random-bytes": lambda p, s: p.write_bytes(random.Random(12).randbytes(3000)),
    "empty": _write(b""),
    "truncated": lambda p, s: p.write_bytes(s[: len(s) * 2 // 5]),
    "latin-1": lambda p, s: p.write_bytes(s[:200] + "\n# caf\xe9 cr\xe8me\n".encode("latin-1")
                                          + s[200:]),
    "alias-bomb": lambda p, s: p.write_bytes(_billion_laughs()),
    "huge-number": lambda p, s: p.write_bytes(_replace_number(s, "9" * 400)),
    "negative-number": lambda p, s: p.write_bytes(_replace_number(s, "-4")),
    "directory": lambda p, s: p.mkdir(),
    "fifo": lambda p, s: os.mkfifo(p),
    "oversized": _sparse,
}
#: Inputs that only mean something for a text format (a binary model refuses them all alike).
TEXT_ONLY = {"truncated", "latin-1", "alias-bomb", "huge-number", "negative-number"}

#: name → the destination (relative to the case folder, or absolute). Each one is bad.
BAD_OUTPUTS: dict[str, str] = {
    "a-directory": "existing-dir",
    "missing-directory": "no/such/dir/out.{ext}",
    "parent-is-a-file": "afile/out.{ext}",
    "unwritable": "/proc/migpolicy-robustness-test.{ext}",  # even root cannot create it
}


@dataclass(frozen=True)
class Case:
    """One run: a command with one bad input or one bad destination."""

    command: Command
    bad: str
    kind: str  # "input" or "output"

    @property
    def id(self) -> str:
        """The pytest id of the case."""
        return f"{self.command.id} <- {self.bad}"


def all_cases() -> list[Case]:
    """Every command crossed with the bad inputs or outputs that apply to it."""
    cases = []
    for command in COMMANDS:
        if "{input}" in command.argv:
            cases += [Case(command, name, "input") for name in BAD_INPUTS
                      if command.reads != "model" or name not in TEXT_ONLY]
        if "{output}" in command.argv:
            cases += [Case(command, name, "output")
                      for name in (*BAD_OUTPUTS, *command.bad_outputs)
                      if name not in command.good_outputs]
    return cases


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` with a digest of what it holds (FIFOs are not read)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_fifo() or path.is_dir():
            out[str(path.relative_to(folder))] = "dir" if path.is_dir() else "fifo"
        else:
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Outcome:
    """What one case did."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    changed: dict[str, tuple[str | None, str | None]]


def _run_case(case: Case, folder: Path, exe: str) -> Outcome:
    folder.mkdir(parents=True)
    profiles = folder / "profiles"
    profiles.mkdir()
    (folder / "existing-dir").mkdir()
    (folder / "afile").write_text("a plain file\n")
    target = "unused"
    if case.kind == "input":
        target = str(folder / f"bad.{'csv' if case.command.reads == 'table' else 'yaml'}")
        if case.command.reads == "model":
            target = str(folder / "bad.skops")
        BAD_INPUTS[case.bad](Path(target), SAMPLES[case.command.reads]())
    else:
        ext = "png" if "--plot" in case.command.argv else "yaml"
        named = case.bad if case.bad in case.command.bad_outputs \
            else BAD_OUTPUTS[case.bad].format(ext=ext)
        target = named if named.startswith("/") else str(folder / named)
    argv = [exe, *(a.replace("{input}", target).replace("{output}", target)
                   for a in case.command.argv)]
    before = _snapshot(folder)
    env = dict(os.environ, MIGPOLICY_PROFILE_DIR=str(profiles), COLUMNS="200", NO_COLOR="1")
    begin = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=folder,
                          timeout=120, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - begin
    after = _snapshot(folder)
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    return Outcome(argv[1:], proc.returncode, proc.stdout, proc.stderr, seconds, changed)


@pytest.fixture(scope="session")
def outcomes(migpolicy_exe: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case of :func:`all_cases`, run concurrently once per session, by case id."""
    root = tmp_path_factory.mktemp("robustness")
    cases = all_cases()
    workers = max(2, min(6, (os.cpu_count() or 1) * 3))  # they mostly start Python
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {case.id: pool.submit(_run_case, case, root / f"case{i}", migpolicy_exe)
                   for i, case in enumerate(cases)}
        return {key: future.result() for key, future in futures.items()}


#: Known defects outside this harness's reach, by (bad input, reads): each case fails
#: strictly, so the fix shows up as an unexpected pass and its line can go.
KNOWN_FAILURES: dict[tuple[str, str | None], str] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``case`` (every command crossed with its bad inputs or outputs) and
    ``long_command`` (every command of :data:`LONG_COMMANDS`)."""
    if "long_command" in metafunc.fixturenames:
        metafunc.parametrize("long_command", LONG_COMMANDS, ids=[c.id for c in LONG_COMMANDS])
    if "case" in metafunc.fixturenames:
        params = []
        for case in all_cases():
            known = KNOWN_FAILURES.get((case.bad, case.command.reads))
            marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
            params.append(pytest.param(case, id=case.id, marks=marks))
        metafunc.parametrize("case", params)
