"""Report directories: one self-contained ``index.html``, its PNG figures and a JSON file.

Shared by ``replay --report`` and ``tune --report``. A report directory is
built in a temporary directory beside its destination and renamed into place
when complete, so an error or Ctrl-C never leaves a half-written report. Each
kind of report has its own marker file (its JSON, e.g. ``replay.json``): an
existing report of the same kind is replaced, any other non-empty directory
(a report of the other kind included) is refused. ``index.html`` embeds its
figures (data URIs) and its style, so the one file opens anywhere; the PNG
files sit beside it too.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from migpolicy.errors import InputError

__all__ = ["KINDS", "check_report_dir", "figure_html", "page", "pyplot", "save_figure", "table",
           "write_report_dir"]

#: Marker file → what a directory holding it is.
KINDS = {"replay.json": "replay report", "tune.json": "tuning report"}

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; } img { max-width: 100%; }
.note { color: #555; } .scroll { overflow-x: auto; }
"""


def check_report_dir(path: str | Path, marker: str) -> Path:
    """Check before any work that ``path`` can become (or replace) a report of ``marker``'s kind."""
    path = Path(path)
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(f"--report {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--report {path}: directory {parent} is not writable")
    try:  # the real test (a read-only file system, /proc, a full quota): create, remove
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".probe", dir=parent))
    except OSError as exc:
        raise InputError(f"--report {path}: cannot write in {parent}: "
                         f"{exc.strerror or exc}") from None
    if path.exists():
        if not path.is_dir():
            raise InputError(f"--report {path}: exists and is not a directory")
        if any(path.iterdir()) and not (path / marker).is_file():
            other = [m for m in KINDS if m != marker and (path / m).is_file()]
            held = f"a {KINDS[other[0]]} ({other[0]})" if other else "a directory"
            raise InputError(f"--report {path}: {held} that is not a {KINDS[marker]}; "
                             "refusing to replace it (choose a new or empty directory)")
    return path


def write_report_dir(path: str | Path, marker: str, build: Callable[[Path], None]) -> Path:
    """Make the report directory ``path``: ``build(tmp)`` fills a temporary one, renamed into place.

    ``build`` writes every file, the ``marker`` one included. An existing
    report of the same kind is replaced only once the new one is complete.
    """
    path = check_report_dir(path, marker)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.absolute().parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=tmp.parent))
            os.replace(path, old / "report")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay out ``fig``, write it as the PNG ``path`` (the reports' resolution) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot().close(fig)


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table: one header row, then ``rows``; every cell escaped."""
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def figure_html(out: Path, name: str, caption: str) -> str:
    """The figure ``out/name`` embedded as a data URI, with its caption and file name."""
    data = base64.b64encode((out / name).read_bytes()).decode()
    caption = html.escape(caption)
    return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption} ({html.escape(name)})</figcaption></figure>")


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` (plain text) and ``body`` (HTML), with the style."""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"</head><body>{body}</body></html>")
