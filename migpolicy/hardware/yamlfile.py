"""Reading YAML safely while remembering the line of every key.

Profiles and policy files are user input: they are read through
:func:`migpolicy.files.read_text` (bounded size, UTF-8 only) and parsed with
the safe loader only; duplicate keys are errors, and every error names the
file and line. Aliases are checked before anything walks the document: a
document that aliases refer back into (a cycle), that nests deeper than
:data:`MAX_DEPTH` or that would expand to more than :data:`MAX_NODES` nodes
once its aliases were copied out (a "billion laughs" file) is refused, so no
later consumer can be made to walk it exponentially.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migpolicy.errors import ConfigError, InputError
from migpolicy.files import atomic_write_text, read_text

__all__ = ["MAX_DEPTH", "MAX_NODES", "KeyLines", "atomic_write_text", "read_yaml"]

#: Key path (tuple of keys and list indices) → 1-based line number.
KeyLines = dict[tuple, int]

#: Deepest nesting of mappings and sequences a document may have.
MAX_DEPTH = 64
#: Most nodes a document may hold once every alias is expanded.
MAX_NODES = 100_000


def read_yaml(path: str | Path, what: str = "YAML file") -> tuple[Any, KeyLines]:
    """Parse ``path`` with the safe loader; return the data and the line of every key.

    Raises :class:`ConfigError` naming the file and line for unreadable files,
    text that is not UTF-8, syntax errors, duplicate keys and documents whose
    aliases or nesting go past the limits.
    """
    path = Path(path)
    try:
        text = read_text(path, what)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_where(path, exc, text)}: invalid YAML: {_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels); "
                          "expected a YAML mapping") from None
    if root is None:
        raise ConfigError(f"{path}: the file is empty; expected a YAML mapping")
    _check_expansion(root, path)
    lines: KeyLines = {}
    _collect_lines(root, path, lines)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_where(path, exc, text)}: invalid YAML: {_problem(exc)}") from None
    finally:
        loader.dispose()
    return data, lines


def _where(path: Path, exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{path}:{mark.line + 1}"
    if isinstance(getattr(exc, "position", None), int):  # a ReaderError: a bad character
        return f"{path}:{text.count(chr(10), 0, exc.position) + 1}"
    return str(path)


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    if isinstance(getattr(exc, "character", None), str):
        problem = f"{problem} (character {exc.character!r})"
    return str(problem).splitlines()[0]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, path: Path) -> None:
    """Refuse cycles, nesting past :data:`MAX_DEPTH` and expansion past :data:`MAX_NODES`.

    One depth-first pass over the composed graph, each node visited once:
    a node reached again is an alias, whose expanded size is already known.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            line = node.start_mark.line + 1
            if depth[key] > MAX_DEPTH:
                raise ConfigError(f"{path}:{line}: nested more than {MAX_DEPTH} levels deep; "
                                  "expected a shallower YAML mapping")
            if size[key] > MAX_NODES:
                raise ConfigError(f"{path}:{line}: aliases expand this document to more than "
                                  f"{MAX_NODES:,} values; refusing it (an alias bomb?)")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise ConfigError(f"{path}:{node.start_mark.line + 1}: an alias refers to a value "
                              "that contains it (a recursive structure); expected plain data")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in reversed(_children(node)))


def _collect_lines(root: yaml.Node, path: Path, lines: KeyLines) -> None:
    """Record the line of every key; each node is walked once, so aliases cost nothing."""
    walked: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, key = stack.pop()
        lines.setdefault(key, node.start_mark.line + 1)
        if id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            values = []
            for knode, vnode in node.value:
                name = knode.value
                if isinstance(name, list):
                    raise ConfigError(f"{path}:{knode.start_mark.line + 1}: a key must be a "
                                      "plain value, not a list or mapping")
                if name in seen:
                    raise ConfigError(
                        f"{path}:{knode.start_mark.line + 1}: duplicate key {name!r}"
                    )
                seen.add(name)
                lines[(*key, name)] = knode.start_mark.line + 1
                values.append((vnode, (*key, name)))
            stack.extend(reversed(values))  # document order: an anchor's keys get its lines
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed([(item, (*key, index)) for index, item in enumerate(node.value)]))
