"""The one place that opens user files for reading and writes outputs.

Inputs (profiles, tables, policies, traces) are untrusted: :func:`input_file`
checks that a path names a readable regular file before anything parses it,
so a directory, a FIFO or a missing file gets one sentence instead of a
traceback or a hang. Outputs go through :func:`atomic_output`: the data is
written to a temporary file beside the destination and renamed into place only
when the writer finished, so an error or Ctrl-C never leaves a half-written
file; :func:`check_output` lets a command check the destination before long
work starts. Files are created with the permissions the umask allows.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from migpolicy.errors import InputError

__all__ = ["atomic_output", "check_output", "input_file"]


def input_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` once it is known to be a readable regular file.

    Raises :class:`InputError` naming the path and what was expected
    (``what`` says what the file should have been, e.g. ``trace``).
    """
    path = Path(path)
    if str(path) == "":
        raise InputError(f"expected the path of a {what}, got an empty string")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a directory; expected a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is not a regular file; expected a {what} file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied; cannot read the {what}")
    return path


def check_output(path: str | Path, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written; return it as a :class:`Path`.

    The parent directory must exist and be writable and ``path`` must not be a
    directory. Raises :class:`InputError` naming the path.
    """
    path = Path(path)
    if str(path) == "":
        raise InputError(f"expected a path for the {what}, got an empty string")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a file path for the {what}")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{path}: directory {parent} does not exist; cannot write the {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: directory {parent} is not writable; cannot write the {what}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb", what: str = "output") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` when the block succeeds.

    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``path`` is left as it was. ``mode`` is ``"wb"`` or ``"w"``
    (UTF-8 text).
    """
    path = check_output(path, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
