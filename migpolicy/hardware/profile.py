"""Hardware profiles: a machine's nodes, topology and cost-model parameters, with provenance.

A profile is a YAML file (see ``docs/hardware.md``). Every numeric parameter
resolves to a named provenance entry: ``measured`` (host, date, command),
``fitted`` (source table, date, command) or ``assumed`` (reason). A section
may name a default with ``provenance: ID``; one parameter overrides it with
``key: {value: X, provenance: ID}``. Impossible values are rejected with the
file, the line, the key and the reason.

A profile holds for one kernel as much as for one machine (the RFC V3 kernel
moves 4 KiB folios twice as fast as V2's on the same platform), so it names
the kernel (``kernel``) and offload driver (``driver``) its numbers hold for.

Profiles are immutable: derive one with :meth:`Profile.with_values` or
:meth:`Profile.renamed` (``dataclasses.replace`` is safe too: every new
instance builds its own lookup table and read-only mappings).
"""

from __future__ import annotations

import datetime as _dt
import math
import types
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from migpolicy.errors import ConfigError, InputError
from migpolicy.hardware.schema import (
    NODE_KEYS,
    OPTIONAL_KEYS,
    PROVENANCE_KINDS,
    SECTIONS,
    Check,
)
from migpolicy.hardware.yamlfile import atomic_write_text, read_yaml
from migpolicy.units import parse_size

__all__ = ["Node", "Profile", "Provenance", "Value", "load_profile"]

_TOP_KEYS = {
    "schema", "name", "description", "provenance", "base_page", "pmd_size", "nodes",
    "stages", "memory", "engines", "cost_model", "learned_model", "kernel", "driver",
    "pud_size",
}
COST_MODELS = ("analytic", "learned")
#: Engines a machine may lack; every other section is required.
_OPTIONAL_SECTIONS = ("engines.dma", "engines.dsa", "engines.sdxi", "engines.gpu")
#: Keys that name a node rather than hold a parameter.
_NODE_REFS = {"engines.gpu": ("device_node",)}


@dataclass(frozen=True)
class Provenance:
    """Where a parameter's value came from."""

    id: str
    kind: str
    detail: Mapping[str, str]

    def describe(self) -> str:
        """One line: ``fitted from RFC V2 tables 1a/1b (2026-11-27)``."""
        d = self.detail
        if self.kind == "measured":
            return f"measured on {d['host']} ({d['date']}) by `{d['command']}`"
        if self.kind == "fitted":
            return f"fitted from {d['source']} ({d['date']})"
        return f"assumed: {d['reason']}"

    def as_dict(self) -> dict:
        """Plain mapping for YAML and JSON."""
        return {"kind": self.kind, **dict(self.detail)}


@dataclass(frozen=True)
class Value:
    """One parameter value and its provenance."""

    value: float
    provenance: Provenance


@dataclass(frozen=True)
class Node:
    """A NUMA node: memory and, if it has any, the cores near it."""

    id: int
    name: str
    kind: str
    params: Mapping[str, Value]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))

    def __getitem__(self, key: str) -> float:
        return self.params[key].value

    @property
    def cores(self) -> int:
        """Physical cores on this node."""
        return int(self["ccds"] * self["cores_per_ccd"])


@dataclass(frozen=True)
class Profile:
    """A validated hardware profile. Parameter lookups are plain float reads."""

    name: str
    description: str
    path: Path | None
    base_page: int
    pmd_size: int
    nodes: Mapping[int, Node]
    sections: Mapping[str, Mapping[str, Value]]
    provenances: Mapping[str, Provenance]
    cost_model: str = "analytic"
    learned_model: str | None = None
    references: Mapping[str, int] = field(default_factory=dict)
    #: The kernel the numbers hold for (e.g. ``6.16.0-rc6 + RFC V3``); ``None``: not tied to one.
    kernel: str | None = None
    #: The copy-offload driver the dma numbers hold for (e.g. ``ptdma``).
    driver: str | None = None
    #: PUD size where the kernel has PUD hugetlb pages (a folio size beyond the PMD's).
    pud_size: int | None = None
    #: Parameter lookup table; rebuilt by every new instance, whatever is passed here.
    _flat: Mapping[str, float] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every instance gets fresh read-only mappings: a copy made with
        # dataclasses.replace() never shares (or writes into) the original's.
        ro = types.MappingProxyType
        sections = {s: ro(dict(v)) for s, v in self.sections.items()}
        flat = {f"{s}.{k}": v.value for s, values in sections.items() for k, v in values.items()}
        object.__setattr__(self, "sections", ro(sections))
        object.__setattr__(self, "nodes", ro(dict(self.nodes)))
        object.__setattr__(self, "provenances", ro(dict(self.provenances)))
        object.__setattr__(self, "references", ro(dict(self.references)))
        object.__setattr__(self, "_flat", ro(flat))

    def p(self, key: str) -> float:
        """The value of ``section.key``, e.g. ``p("engines.dma.prep_ns")``."""
        return self._flat[key]

    def has(self, section: str) -> bool:
        """Whether the profile defines ``section`` (e.g. ``engines.gpu``)."""
        return section in self.sections

    def node(self, node_id: int, where: str = "") -> Node:
        """The node ``node_id``, or an :class:`InputError` naming the profile's nodes."""
        if node_id not in self.nodes:
            known = ", ".join(map(str, self.nodes))
            raise InputError(
                f"{where + ': ' if where else ''}profile {self.name} has no node {node_id} "
                f"(nodes: {known})"
            )
        return self.nodes[node_id]

    @property
    def cpu_nodes(self) -> list[Node]:
        """Nodes that have cores."""
        return [n for n in self.nodes.values() if n.cores > 0]

    def values(self) -> Iterator[tuple[str, Value, str]]:
        """Every parameter as (dotted path, value, unit)."""
        for node in self.nodes.values():
            for key, value in node.params.items():
                yield f"nodes.{node.id}.{key}", value, NODE_KEYS[key].unit
        for section, values in self.sections.items():
            for key, value in values.items():
                yield f"{section}.{key}", value, SECTIONS[section][key].unit

    def with_values(self, updates: Mapping[str, float], provenance: Provenance) -> Profile:
        """A copy with ``section.key`` values replaced and marked with ``provenance``.

        A key the profile left out and that takes another key's value
        (``reverse_link_gbps`` ← ``link_gbps``) follows that key.
        """
        sections = {s: dict(v) for s, v in self.sections.items()}
        nodes = dict(self.nodes)
        for dotted, number in updates.items():
            section, key = dotted.rsplit(".", 1)
            if section.startswith("nodes."):
                node = nodes[int(section.split(".")[1])]
                params = {**node.params, key: Value(float(number), provenance)}
                nodes[node.id] = replace(node, params=params)
            else:
                old = sections[section].get(key)
                sections[section][key] = Value(float(number), provenance)
                for alias, source in OPTIONAL_KEYS.get(section, {}).items():
                    if source == key and alias not in updates and old is not None \
                            and self.sections[section].get(alias) is old:  # implied, not set
                        sections[section][alias] = sections[section][key]
        provenances = dict(self.provenances)
        provenances[provenance.id] = provenance
        return replace(self, sections=sections, nodes=nodes, provenances=provenances)

    def value(self, dotted: str) -> float:
        """Any parameter by its dotted path, node parameters included (``nodes.0.ccds``)."""
        if dotted.startswith("nodes."):
            _, node_id, key = dotted.split(".")
            return self.nodes[int(node_id)][key]
        return self._flat[dotted]

    def renamed(self, name: str, description: str | None = None) -> Profile:
        """A copy with another name (and description)."""
        return replace(self, name=name, description=description or self.description)

    def to_yaml(self) -> str:
        """Serialise to the profile format (each section names its most common provenance)."""
        used = {v.provenance.id for _, v, _ in self.values()}
        doc: dict[str, Any] = {
            "schema": 1,
            "name": self.name,
            "description": self.description,
            "provenance": {
                pid: p.as_dict() for pid, p in self.provenances.items() if pid in used
            },
            "base_page": self.base_page,
            "pmd_size": self.pmd_size,
            **({"pud_size": self.pud_size} if self.pud_size else {}),
            "nodes": [
                {"id": n.id, "name": n.name, "kind": n.kind, **_dump_values(n.params)}
                for n in self.nodes.values()
            ],
        }
        for section, values in self.sections.items():
            target = doc
            parts = section.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = _dump_values(values)
            for ref in _NODE_REFS.get(section, ()):
                if f"{section}.{ref}" in self.references:
                    target[parts[-1]][ref] = self.references[f"{section}.{ref}"]
        if self.kernel:
            doc["kernel"] = self.kernel
        if self.driver:
            doc["driver"] = self.driver
        doc["cost_model"] = self.cost_model
        if self.learned_model:
            doc["learned_model"] = self.learned_model
        return yaml.safe_dump(doc, sort_keys=False, width=100)

    def write(self, path: str | Path) -> None:
        """Write the profile atomically."""
        atomic_write_text(path, self.to_yaml())


def _dump_values(values: Mapping[str, Value]) -> dict:
    common = Counter(v.provenance.id for v in values.values()).most_common(1)[0][0]
    out: dict[str, Any] = {"provenance": common}
    for key, value in values.items():
        number = value.value
        number = int(number) if number.is_integer() else float(f"{number:.6g}")
        if value.provenance.id == common:
            out[key] = number
        else:
            out[key] = {"value": number, "provenance": value.provenance.id}
    return out


class _Reader:
    """Validates a parsed profile document, producing errors with file and line."""

    def __init__(self, path: Path, lines: dict):
        self.path = path
        self.lines = lines

    def fail(self, keys: tuple, message: str) -> ConfigError:
        probe = keys
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        where = f"{self.path}:{line}" if line else str(self.path)
        dotted = ".".join(map(str, keys))
        return ConfigError(f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}")

    def mapping(self, data: Any, keys: tuple) -> dict:
        if not isinstance(data, dict):
            raise self.fail(keys, f"expected a mapping, got {type(data).__name__}")
        return data

    def provenances(self, data: Any) -> dict[str, Provenance]:
        out = {}
        for pid, entry in self.mapping(data, ("provenance",)).items():
            keys = ("provenance", pid)
            entry = self.mapping(entry, keys)
            kind = entry.get("kind")
            if kind not in PROVENANCE_KINDS:
                raise self.fail((*keys, "kind"),
                                f"expected one of {', '.join(PROVENANCE_KINDS)}, got {kind!r}")
            needed = PROVENANCE_KINDS[kind]
            missing = [k for k in needed if not entry.get(k)]
            if missing:
                article = "an" if kind[0] in "aeiou" else "a"
                raise self.fail(keys, f"{article} {kind} provenance needs {', '.join(missing)}")
            detail = {k: str(v) for k, v in entry.items() if k != "kind"}
            out[pid] = Provenance(str(pid), kind, detail)
        return out

    def values(
        self, data: Any, keys: tuple, checks: Mapping[str, Check], provs: Mapping[str, Provenance],
        skip: tuple = (), optional: Mapping[str, str] | None = None,
    ) -> dict[str, Value]:
        data = self.mapping(data, keys)
        default = data.get("provenance")
        if default is not None and default not in provs:
            raise self.fail((*keys, "provenance"), f"unknown provenance {default!r}")
        out = {}
        for key, raw in data.items():
            if key == "provenance" or key in skip:
                continue
            if key not in checks:
                raise self.fail((*keys, key), "unknown key; expected one of "
                                + ", ".join(sorted(checks)))
            pid = default
            if isinstance(raw, dict):
                unknown = set(raw) - {"value", "provenance"}
                if unknown or "value" not in raw:
                    raise self.fail((*keys, key), "expected a number or {value: N, provenance: ID}")
                pid = raw.get("provenance", default)
                raw = raw["value"]
            if pid is None:
                raise self.fail((*keys, key), "has no provenance; add `provenance: ID` to the "
                                "section or give {value: N, provenance: ID}")
            if pid not in provs:
                raise self.fail((*keys, key), f"unknown provenance {pid!r}")
            number = self.number(raw, (*keys, key), checks[key])
            out[key] = Value(number, provs[pid])
        optional = optional or {}
        missing = [k for k in checks if k not in out and k not in optional]
        if missing:
            raise self.fail(keys, "missing " + ", ".join(missing))
        for key, fallback in optional.items():
            if key in out:
                continue
            if isinstance(fallback, str):
                out[key] = out[fallback]
            else:  # a default, assumed for the reason given with it
                number, reason = fallback
                prov = Provenance(f"default-{key.replace('_', '-')}", "assumed",
                                  {"reason": reason})
                out[key] = Value(float(number), prov)
        return out

    def number(self, raw: Any, keys: tuple, check: Check) -> float:
        if check.unit == "bytes" and isinstance(raw, str):
            try:
                raw = parse_size(raw, ".".join(map(str, keys)))
            except InputError as exc:
                raise self.fail(keys, str(exc).split(": ", 1)[1]) from None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise self.fail(keys, f"expected {check.expected}, got {raw!r}")
        if math.isinf(raw):
            raise self.fail(keys, f"expected a finite number, got {raw!r}")
        if not check.ok(float(raw)):
            raise self.fail(keys, f"expected {check.expected}, got {raw!r}")
        return float(raw)


def load_profile(path: str | Path) -> Profile:
    """Read and validate the profile at ``path``."""
    path = Path(path)
    data, lines = read_yaml(path)
    r = _Reader(path, lines)
    data = r.mapping(data, ())
    unknown = set(data) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise r.fail((key,), "unknown key; expected one of " + ", ".join(sorted(_TOP_KEYS)))
    if data.get("schema") != 1:
        raise r.fail(("schema",), f"expected schema: 1, got {data.get('schema')!r}")
    for key in ("name", "provenance", "nodes", "stages", "memory", "engines"):
        if key not in data:
            raise r.fail((), f"missing required key {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise r.fail(("name",), "expected a non-empty string")
    provs = r.provenances(data["provenance"])

    def size_of(key: str, default: int) -> int:
        try:
            return parse_size(data.get(key, default), key)
        except InputError as exc:
            raise r.fail((key,), str(exc).split(": ", 1)[1]) from None

    base_page = size_of("base_page", 4096)
    pmd_size = size_of("pmd_size", 2 << 20)
    if pmd_size % base_page:
        raise r.fail(("pmd_size",), "must be a multiple of base_page")
    pud_size = size_of("pud_size", 0) if "pud_size" in data else None
    if pud_size is not None and (pud_size <= pmd_size or pud_size % pmd_size):
        raise r.fail(("pud_size",), "must be a multiple of pmd_size larger than it")

    nodes: dict[int, Node] = {}
    if not isinstance(data["nodes"], list) or not data["nodes"]:
        raise r.fail(("nodes",), "expected a non-empty list of nodes")
    for index, entry in enumerate(data["nodes"]):
        keys = ("nodes", index)
        entry = r.mapping(entry, keys)
        node_id = entry.get("id")
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 0:
            raise r.fail((*keys, "id"), f"expected a node id >= 0, got {node_id!r}")
        if node_id in nodes:
            raise r.fail((*keys, "id"), f"node {node_id} is defined twice")
        params = r.values(entry, keys, NODE_KEYS, provs, skip=("id", "name", "kind"))
        nodes[node_id] = Node(node_id, str(entry.get("name", f"node{node_id}")),
                              str(entry.get("kind", "dram")), params)
    if not any(n.cores for n in nodes.values()):
        raise r.fail(("nodes",), "no node has cores (ccds x cores_per_ccd must be >= 1 somewhere)")

    sections: dict[str, dict[str, Value]] = {}
    references: dict[str, int] = {}
    for section, checks in SECTIONS.items():
        parts = section.split(".")
        raw: Any = data
        for depth, part in enumerate(parts):
            raw = r.mapping(raw, tuple(parts[:depth])).get(part) if raw is not None else None
        if raw is None:
            if section in _OPTIONAL_SECTIONS:
                continue  # an engine this machine lacks
            raise r.fail(tuple(parts[:-1]), f"missing section {parts[-1]!r}")
        refs = _NODE_REFS.get(section, ())
        sections[section] = r.values(raw, tuple(parts), checks, provs, skip=refs,
                                     optional=OPTIONAL_KEYS.get(section))
        for ref in refs:
            if ref in raw and raw[ref] not in nodes:
                raise r.fail((*parts, ref), f"node {raw[ref]!r} is referenced but not defined "
                             f"(nodes: {', '.join(map(str, nodes))})")
            if ref in raw:
                references[f"{section}.{ref}"] = int(raw[ref])
    for group in ("stages", "engines"):
        known = {s.split(".")[1] for s in SECTIONS if s.startswith(group + ".")}
        extra = set(r.mapping(data[group], (group,))) - known
        if extra:
            raise r.fail((group, sorted(extra)[0]),
                         "unknown section; expected one of " + ", ".join(sorted(known)))
    if "engines.dma" in sections:
        dma = sections["engines.dma"]
        if dma["total_gbps"].value < dma["channel_gbps"].value:
            raise r.fail(("engines", "dma", "total_gbps"),
                         "must be at least channel_gbps (one channel cannot exceed all of them)")
    cost_model = data.get("cost_model", "analytic")
    if cost_model not in COST_MODELS:
        raise r.fail(("cost_model",), f"expected one of {', '.join(COST_MODELS)}, "
                     f"got {cost_model!r}")
    tied = {}
    for key in ("kernel", "driver"):
        if data.get(key) is not None:
            if not isinstance(data[key], str | int | float) or isinstance(data[key], bool) \
                    or not str(data[key]).strip():
                raise r.fail((key,), "expected a non-empty string")
            tied[key] = str(data[key]).strip()
    learned = data.get("learned_model")
    if cost_model == "learned" and not learned:
        raise r.fail(("cost_model",), "cost_model: learned needs learned_model: FILE")
    for values in sections.values():  # defaults bring their own provenance records
        for value in values.values():
            provs.setdefault(value.provenance.id, value.provenance)
    return Profile(
        name=name,
        description=str(data.get("description", "")).strip(),
        path=path,
        base_page=base_page,
        pmd_size=pmd_size,
        nodes=nodes,
        sections=sections,
        provenances=provs,
        cost_model=cost_model,
        learned_model=str(learned) if learned else None,
        references=references,
        pud_size=pud_size,
        **tied,
    )


def today() -> str:
    """Today's date in ISO form, for provenance records."""
    return _dt.date.today().isoformat()
