"""The one place that opens user files for reading and writes outputs.

Inputs (profiles, tables, policies, traces) are untrusted: :func:`input_file`
checks that a path names a readable regular file before anything parses it,
so a directory, a FIFO or a missing file gets one sentence instead of a
traceback or a hang. :func:`read_text` and :func:`open_text` then read at most
a bounded number of bytes and decode them as UTF-8, naming the file and line of
the first byte that is not. Outputs go through :func:`atomic_output`
(:func:`atomic_write_text` and :func:`atomic_write_bytes` for data already in
memory): the data is written to a temporary file beside the destination and
renamed into place only when the writer finished, so an error or Ctrl-C never
leaves a half-written file; :func:`check_output` lets a command check the
destination before long work starts. Files are created with the permissions
the umask allows.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from migpolicy.errors import InputError
from migpolicy.units import format_size

__all__ = [
    "MAX_TEXT_BYTES",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "input_file",
    "open_text",
    "read_text",
]

#: Largest text input (profile, table, policy) read whole into memory: 64 MiB.
#: A larger one is refused rather than exhausting memory; traces are streamed.
MAX_TEXT_BYTES = 64 << 20


def input_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` once it is known to be a readable regular file.

    Raises :class:`InputError` naming the path and what was expected
    (``what`` says what the file should have been, e.g. ``trace``).
    """
    if not str(path):
        raise InputError(f"expected the path of a {what}, got an empty string")
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: cannot read: no such file; expected a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a directory; expected a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is not a regular file; expected a {what} file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied; cannot read the {what}")
    return path


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Return the UTF-8 text of the file at ``path``, at most ``max_bytes`` long.

    Raises :class:`InputError` naming the file for anything :func:`input_file`
    refuses, a file larger than ``max_bytes``, and bytes that are not UTF-8
    (naming the line and the offending byte). A UTF-8 byte-order mark is dropped.
    """
    path = input_file(path, what)
    if path.stat().st_size > max_bytes:  # refused unread; a file growing meanwhile is cut below
        raise _too_large(path, max_bytes, what)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _too_large(path, max_bytes, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(f"{path}:{line}: byte 0x{data[exc.start]:02x} at column {column} is "
                         f"not UTF-8; expected a {what} as UTF-8 text") from None


def _too_large(path: Path, max_bytes: int, what: str) -> InputError:
    return InputError(f"{path}: larger than {format_size(max_bytes)}; expected a {what} of at "
                      "most that size")


def open_text(path: str | Path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> io.StringIO:
    """:func:`read_text` as a file object, line endings untouched (what :mod:`csv` expects)."""
    return io.StringIO(read_text(path, what, max_bytes), newline="")


def check_output(path: str | Path, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written; return it as a :class:`Path`.

    The parent directory must exist and be writable and ``path`` must not be a
    directory. Raises :class:`InputError` naming the path.
    """
    if not str(path):
        raise InputError(f"expected a path for the {what}, got an empty string")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a file path for the {what}")
    parent = path.parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise InputError(f"{path}: {parent} {problem}; cannot write the {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: directory {parent} is not writable; cannot write the {what}")
    try:  # the real test (a read-only file system, /proc, a full quota): create, remove
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb", what: str = "output", *,
                  parents: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` when the block succeeds.

    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``path`` is left as it was; an :class:`OSError` becomes an
    :class:`InputError` naming ``path``. ``mode`` is ``"wb"`` or ``"w"``
    (UTF-8 text). ``parents`` creates missing parent directories first.
    """
    if parents:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{path}: cannot create its directory: {exc.strerror or exc}"
                             ) from None
    path = check_output(path, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        encoding = None if "b" in mode else "utf-8"
        # opened by name: the handle's ``name`` says where it writes (the native trace writer
        # spools beside it)
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a file system gone read-only: still one sentence
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, what: str = "output", *,
                      parents: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`: never half-written.

    Missing parent directories are created unless ``parents`` is false;
    commands check their destinations with :func:`check_output` before work.
    """
    with atomic_output(path, "w", what, parents=parents) as handle:
        handle.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, what: str = "output", *,
                       parents: bool = True) -> None:
    """:func:`atomic_write_text` for bytes."""
    with atomic_output(path, "wb", what, parents=parents) as handle:
        handle.write(data)
