"""Reading YAML safely while remembering the line of every key, and writing it atomically.

Profiles and policy files are user input: they are read with the safe loader
only, duplicate keys are errors, and every error names the file and line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from migpolicy.errors import ConfigError

__all__ = ["KeyLines", "atomic_write_text", "read_yaml"]

#: Key path (tuple of keys and list indices) → 1-based line number.
KeyLines = dict[tuple, int]


def read_yaml(path: str | Path) -> tuple[Any, KeyLines]:
    """Parse ``path`` with the safe loader; return the data and the line of every key.

    Raises :class:`ConfigError` naming the file and line for unreadable files,
    syntax errors and duplicate keys.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{path}: the file is empty; expected a YAML mapping")
    lines: KeyLines = {}
    _collect_lines(root, (), lines, path)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    return data, lines


def _collect_lines(node: yaml.Node, key: tuple, lines: KeyLines, path: Path) -> None:
    lines[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for knode, vnode in node.value:
            name = knode.value
            if name in seen:
                raise ConfigError(
                    f"{path}:{knode.start_mark.line + 1}: duplicate key {name!r}"
                )
            seen.add(name)
            _collect_lines(vnode, (*key, name), lines, path)
            lines[(*key, name)] = knode.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*key, index), lines, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
