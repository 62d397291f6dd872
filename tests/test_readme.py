"""The README's promises: every command it shows is tested, and its quick examples run."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
COMMAND = re.compile(r"^\s*(?:\S+=\S+\s+)?migpolicy\s+(.*?)(?:\s+#.*)?$")


def readme_commands() -> list[str]:
    """Every `migpolicy ...` line of the README's code blocks (continuations joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        for part in line.split("&&"):
            match = COMMAND.match(part)
            if match:
                out.append(match.group(1).strip())
    return out


def subcommand(args: str) -> str:
    words = [w for w in shlex.split(args) if not w.startswith("-")]
    return " ".join(words[:2]) if words and words[0] == "hw" else words[0]


def test_readme_shows_the_two_setup_commands():
    assert "pip install -e . && migpolicy trace gen" in README
    assert "&& migpolicy tune /tmp/phases.mpt" in README
    assert "&& migpolicy replay /tmp/phases.mpt" in README
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"^python3 -m venv .*pytest.*$", ci, flags=re.M).group(0)
    assert test_command in README


def test_every_readme_command_is_exercised_by_a_test():
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py")
                        if p.name != "test_readme.py")
    missing = []
    for name in sorted({subcommand(c) for c in readme_commands()}):
        words = name.split()
        spaced = " ".join(words)
        listed = ", ".join(f'"{w}"' for w in words)
        if spaced not in sources and listed not in sources:
            missing.append(name)
    assert not missing, f"README commands without a test: {missing}"


QUICK = [c for c in readme_commands()
         if "$" not in c and not re.search(r"\b(calibrate|fit|learn|validate)\b", c)]


@pytest.mark.parametrize("args", QUICK)
def test_quick_readme_example_runs(args, tmp_path):
    result = subprocess.run(["migpolicy", *shlex.split(args)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
