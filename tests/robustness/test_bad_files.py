"""Every command that reads or writes a file, against every bad file (see conftest.py).

A bad input or destination must give a non-zero exit status, one ``Error:``
sentence on stderr and no traceback, nothing on stdout (every command runs
with ``--json``), and leave every file as it was, creating none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from migpolicy.plugins.profiles import shipped_dir


def test_a_bad_file_is_one_sentence_and_changes_nothing(case, outcomes) -> None:
    outcome = outcomes[case.id]
    shown = f"migpolicy {' '.join(outcome.argv)}\n--- stderr:\n{outcome.stderr}"
    assert outcome.returncode in (1, 2), shown
    assert "Traceback" not in outcome.stderr, shown
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, shown
    assert outcome.stdout == "", shown
    assert outcome.changed == {}, shown


def test_each_case_is_quick(outcomes) -> None:
    """No bad file makes a command hang or work long before refusing it."""
    slow = {key: round(o.seconds, 1) for key, o in outcomes.items() if o.seconds > 30}
    assert not slow


def _fill_with_bad_profiles(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "bomb.yaml").write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)))
    (folder / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (folder / "random.yaml").write_bytes(os.urandom(2000))
    (folder / "empty.yaml").write_bytes(b"")
    (folder / "dir.yaml").mkdir()
    os.mkfifo(folder / "fifo.yaml")
    return ["bomb", "latin1", "random", "empty", "dir", "fifo"]


def test_a_profile_dir_full_of_bad_files_is_listed_with_one_warning_each(run_cli, tmp_path,
                                                                        monkeypatch) -> None:
    folder = tmp_path / "profiles"
    bad = _fill_with_bad_profiles(folder)
    monkeypatch.setenv("MIGPOLICY_PROFILE_DIR", str(folder))
    code, out, err = run_cli("hw", "list", "--json", timeout=30)
    assert code == 0, err
    names = {row["name"] for row in json.loads(out)}
    assert names == {p.stem for p in shipped_dir().glob("*.yaml")}
    warnings = err.strip().splitlines()
    assert len(warnings) == len(bad), err
    for name in bad:
        assert sum(f"{folder / name}.yaml" in w for w in warnings) == 1, (name, err)
    assert "Traceback" not in err
    code, out, err = run_cli("move", "--hw", "gh200", "--bytes", "4M", "--json", timeout=30)
    assert code == 0 and json.loads(out)["hw"] == "gh200", err
