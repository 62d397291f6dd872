"""migpolicy.files: bounded UTF-8 reading that names file and line; checked, atomic outputs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.files import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    check_output,
    input_file,
    open_text,
    read_text,
)


def test_read_text_names_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"engine,folio\ncpu,4\nmt,caf\xe9\n")
    with pytest.raises(InputError) as caught:
        read_text(path, "CSV table")
    assert str(caught.value) == (f"{path}:3: byte 0xe9 at column 7 is not UTF-8; expected a "
                                 "CSV table as UTF-8 text")


def test_read_text_drops_a_byte_order_mark_and_keeps_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\r\n1,2\r\n")
    assert read_text(path) == "a,b\r\n1,2\r\n"
    assert open_text(path).read() == "a,b\r\n1,2\r\n"


def test_read_text_refuses_files_past_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"x" * 2049)
    assert read_text(path, max_bytes=2049) == "x" * 2049
    with pytest.raises(InputError, match=r"big.yaml: larger than 2KiB; expected a profile of at "
                                         r"most that size"):
        read_text(path, "profile", max_bytes=2048)


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "empty-name"])
def test_input_file_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty-name":
        path = ""
    with pytest.raises(InputError) as caught:
        read_text(path, "profile")  # a FIFO would block a plain open(); this must not
    assert "\n" not in str(caught.value)
    assert ("profile" in str(caught.value))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_read_text_decodes_or_names_the_line(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "f.txt"
    path.write_bytes(data)
    try:
        text = read_text(path)
    except InputError as exc:
        message = str(exc)
        line = int(message.split(":")[1])
        assert 1 <= line <= data.count(b"\n") + 1
        assert "not UTF-8" in message
    else:
        assert text == data.decode("utf-8-sig")


def test_check_output_refuses_bad_destinations_and_creates_nothing(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for path, needle in ((tmp_path, "is a directory"),
                         (tmp_path / "missing" / "o.yaml", "does not exist"),
                         (afile / "o.yaml", "is not a directory"),
                         ("", "empty string")):
        with pytest.raises(InputError, match=needle):
            check_output(path, "profile")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert check_output(tmp_path / "new.yaml") == tmp_path / "new.yaml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_atomic_output_leaves_the_old_file_on_error_and_on_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_output(path, "w") as handle:
            handle.write("half")
            raise error
        assert path.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_writes_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "a")
        atomic_write_bytes(tmp_path / "b.bin", b"b")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "b.bin").read_bytes() == b"b"


def test_atomic_write_creates_parents_unless_told_not_to(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "new" / "dir" / "p.yaml", "x: 1\n")
    assert (tmp_path / "new" / "dir" / "p.yaml").read_text() == "x: 1\n"
    with pytest.raises(InputError, match="does not exist"):
        atomic_write_text(tmp_path / "other" / "p.yaml", "x", parents=False)


def test_a_write_that_fails_late_is_one_sentence(tmp_path: Path) -> None:
    """/proc refuses new files even to root: the failure surfaces as InputError."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    with pytest.raises(InputError, match=r"cannot write the profile"):
        atomic_write_text(Path("/proc") / "migpolicy-test.yaml", "x", "profile")


def test_input_file_returns_a_path(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("a: 1\n")
    assert input_file(str(path)) == path
