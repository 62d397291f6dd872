"""Hardware profiles: the shipped ones load, round-trip and carry provenance; bad ones fail clearly.

Bad profiles are made by editing a copy of a shipped profile, so every case
is a real file with a real line number; each must give one ConfigError whose
single-line message names the file, the line and the key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migpolicy.errors import ConfigError, InputError
from migpolicy.hardware.profile import Profile, Provenance, load_profile
from migpolicy.hardware.registry import DEFAULT_PROFILE, find_profile, list_profiles
from migpolicy.hardware.schema import NODE_KEYS, PROVENANCE_KINDS, SECTIONS
from migpolicy.hardware.yamlfile import atomic_write_text
from migpolicy.plugin_manager import get_plugin_manager

SHIPPED = ("zen3-epyc-ptdma", "zen3-epyc-ptdma-6.14", "spr-dsa", "gh200", "dram-cxl", "local")


def snapshot(profile: Profile) -> dict:
    """Everything a profile says, as comparable plain data."""
    return {
        "name": profile.name,
        "description": profile.description,
        "base_page": profile.base_page,
        "pmd_size": profile.pmd_size,
        "cost_model": profile.cost_model,
        "learned_model": profile.learned_model,
        "references": dict(profile.references),
        "nodes": {n.id: (n.name, n.kind) for n in profile.nodes.values()},
        "values": {path: (v.value, v.provenance) for path, v, _ in profile.values()},
    }


# -- shipped profiles --------------------------------------------------------------------------


def test_every_shipped_profile_is_registered(pm) -> None:
    profiles = list_profiles(pm)
    assert set(SHIPPED) <= set(profiles)
    assert DEFAULT_PROFILE in profiles
    for name in SHIPPED:
        assert profiles[name].name == name
        assert profiles[name].path is not None and profiles[name].path.stem == name
        assert profiles[name].description


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_round_trips(pm, tmp_path: Path, name: str) -> None:
    profile = find_profile(pm, name)
    path = tmp_path / f"{name}.yaml"
    profile.write(path)
    again = load_profile(path)
    assert snapshot(again) == snapshot(profile)
    assert again.to_yaml() == profile.to_yaml()
    # only provenance that some parameter uses is written
    used = {v.provenance.id for _, v, _ in profile.values()}
    assert set(again.provenances) == used


@pytest.mark.parametrize("name", SHIPPED)
def test_every_parameter_has_complete_provenance(pm, name: str) -> None:
    profile = find_profile(pm, name)
    paths = []
    for path, value, unit in profile.values():
        paths.append(path)
        prov = value.provenance
        assert prov.kind in ("measured", "fitted", "assumed"), path
        for detail in PROVENANCE_KINDS[prov.kind]:
            assert str(prov.detail.get(detail, "")).strip(), (path, detail)
        assert prov.describe()
        assert isinstance(value.value, float)
        assert isinstance(unit, str)
    # every node key and every key of every present section is there
    for node in profile.nodes.values():
        assert set(node.params) == set(NODE_KEYS)
    for section, values in profile.sections.items():
        assert set(values) == set(SECTIONS[section]), section
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_are_physically_sensible(pm, name: str) -> None:
    profile = find_profile(pm, name)
    assert profile.cpu_nodes, "some node must have cores"
    assert profile.pmd_size % profile.base_page == 0
    assert profile.p("engines.mt.max_threads") >= 1
    if profile.has("engines.dma"):
        assert profile.p("engines.dma.total_gbps") >= profile.p("engines.dma.channel_gbps")
    if name != "local":
        assert len(profile.nodes) >= 2, "migration needs a second node"


def test_provenance_describe() -> None:
    measured = Provenance("m", "measured", {"host": "h1", "date": "2026-01-02",
                                            "command": "migpolicy hw calibrate"})
    assert "h1" in measured.describe() and "migpolicy hw calibrate" in measured.describe()
    fitted = Provenance("f", "fitted", {"source": "RFC V2 table 1a", "date": "2026-01-02",
                                        "command": "x"})
    assert "RFC V2 table 1a" in fitted.describe()
    assumed = Provenance("a", "assumed", {"reason": "a guess"})
    assert assumed.describe() == "assumed: a guess"
    assert assumed.as_dict() == {"kind": "assumed", "reason": "a guess"}


# -- with_values and write ---------------------------------------------------------------------


def test_a_left_out_reverse_link_follows_a_fitted_link(pm) -> None:
    """zen3 gives one link figure (symmetric); gh200 measured both directions."""
    fit = Provenance("test-fit", "fitted", {"source": "t", "date": "2026-01-01", "command": "x"})
    zen3 = find_profile(pm, "zen3-epyc-ptdma").with_values({"memory.link_gbps": 40.0}, fit)
    assert zen3.p("memory.reverse_link_gbps") == 40.0
    gh200 = find_profile(pm, "gh200")
    before = gh200.p("memory.reverse_link_gbps")
    moved = gh200.with_values({"memory.link_gbps": before + 100}, fit)
    assert moved.p("memory.reverse_link_gbps") == before


def test_with_values_marks_updated_parameters(pm, tmp_path: Path) -> None:
    profile = find_profile(pm, "zen3-epyc-ptdma")
    fit = Provenance("test-fit", "fitted", {"source": "a test table", "date": "2026-01-01",
                                            "command": "pytest"})
    updated = profile.with_values({"memory.thread_gbps": 17.5, "stages.batch.batch_ns": 1234},
                                  fit)
    assert updated.p("memory.thread_gbps") == 17.5
    assert updated.p("stages.batch.batch_ns") == 1234.0
    assert updated.sections["memory"]["thread_gbps"].provenance == fit
    assert updated.sections["stages.batch"]["batch_ns"].provenance == fit
    assert updated.provenances["test-fit"] == fit
    before, after = snapshot(profile)["values"], snapshot(updated)["values"]
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"memory.thread_gbps", "stages.batch.batch_ns"}
    # the original is untouched
    assert profile.sections["memory"]["thread_gbps"].provenance.id != "test-fit"
    assert "test-fit" not in profile.provenances
    # and the new provenance survives a write and a load
    path = tmp_path / "fitted.yaml"
    updated.write(path)
    again = load_profile(path)
    assert again.sections["memory"]["thread_gbps"].provenance == fit
    assert again.p("memory.thread_gbps") == 17.5


def test_renamed(pm) -> None:
    profile = find_profile(pm, "local")
    other = profile.renamed("mybox", "my machine")
    assert (other.name, other.description) == ("mybox", "my machine")
    assert other.p("memory.thread_gbps") == profile.p("memory.thread_gbps")
    assert profile.name == "local"


def test_write_is_atomic_and_leaves_no_temp_file(pm, tmp_path: Path) -> None:
    profile = find_profile(pm, "gh200")
    folder = tmp_path / "new" / "dir"
    path = folder / "gh200.yaml"
    profile.write(path)
    profile.renamed("gh200", "second version").write(path)
    assert [p.name for p in folder.iterdir()] == ["gh200.yaml"]
    assert load_profile(path).description == "second version"


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.yaml"
    path.write_text("old: 1\n")

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        atomic_write_text(path, Boom())  # type: ignore[arg-type]
    assert path.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.yaml"]


# -- bad profiles ------------------------------------------------------------------------------


def line_of(text: str, pattern: str) -> int:
    """1-based line of the first match of ``pattern`` (multiline regex)."""
    match = re.search(pattern, text, flags=re.M)
    assert match, pattern
    return text.count("\n", 0, match.start()) + 1


def sub(pattern: str, replacement: str):
    def edit(text: str) -> str:
        return re.sub(pattern, replacement, text, count=1, flags=re.M)

    return edit


def _block_end(lines: list[str], start: int) -> int:
    """Index after the line ``start`` and every more-indented (or blank) line below it."""
    indent = len(lines[start]) - len(lines[start].lstrip(" -"))
    end = start + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return end


def drop_block(header: str):
    """Remove the first line matching ``header`` and its nested lines."""

    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if re.match(header, line))
        return "".join(lines[:start] + lines[_block_end(lines, start):])

    return edit


def set_value(key: str, value: str, every: bool = False):
    """Set ``key`` (written inline or as a nested {value, provenance} block) to ``value``."""

    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        out, i, done = [], 0, False
        while i < len(lines):
            match = re.match(rf"^(\s*(?:- )?){re.escape(key)}:", lines[i])
            if match and (every or not done):
                out.append(f"{match.group(1)}{key}: {value}\n")
                i, done = _block_end(lines, i), True
            else:
                out.append(lines[i])
                i += 1
        return "".join(out)

    return edit


def duplicate_line(pattern: str):
    def edit(text: str) -> str:
        match = re.search(pattern + r".*\n", text, flags=re.M)
        assert match
        return text[: match.end()] + match.group(0) + text[match.end():]

    return edit


def at(key: str, value: str) -> str:
    """Regex of the line where ``key: value`` was written."""
    return rf"^\s*(?:- )?{re.escape(key)}: {re.escape(value)}$"


# id, profile, edit, regex locating the expected line (group 1 if any), key, reason
BAD_PROFILES = [
    ("negative-bandwidth", "zen3-epyc-ptdma", set_value("bandwidth_gbps", "-204.8"),
     at("bandwidth_gbps", "-204.8"), "nodes.0.bandwidth_gbps", "positive"),
    ("zero-cores", "zen3-epyc-ptdma", set_value("ccds", "0", every=True),
     r"^nodes:", "nodes", "no node has cores"),
    ("undefined-node", "gh200", set_value("device_node", "7"),
     at("device_node", "7"), "engines.gpu.device_node", "not defined"),
    ("typo", "zen3-epyc-ptdma", sub(r"^(\s+)thread_gbps:", r"\1thread_gbsp:"),
     r"^\s+thread_gbsp:", "memory.thread_gbsp", "unknown key"),
    ("missing-section", "zen3-epyc-ptdma", drop_block(r"^\s+remap:\s*$"),
     r"^stages:", "stages", "missing section 'remap'"),
    ("missing-top-section", "zen3-epyc-ptdma", drop_block(r"^memory:"),
     r"^schema:", "'memory'", "missing"),
    ("missing-key", "zen3-epyc-ptdma", drop_block(r"^\s+link_gbps:"),
     r"^memory:", "memory", "missing link_gbps"),
    ("unknown-provenance", "zen3-epyc-ptdma",
     set_value("thread_gbps", "{value: 20, provenance: no-such-id}"),
     r"^\s+thread_gbps:", "memory.thread_gbps", "unknown provenance 'no-such-id'"),
    ("unknown-section-provenance", "zen3-epyc-ptdma",
     sub(r"^(memory:\n\s+provenance:) .*$", r"\1 no-such-id"),
     r"^memory:\n\s+(provenance): no-such-id", "memory.provenance",
     "unknown provenance 'no-such-id'"),
    ("duplicate-key", "zen3-epyc-ptdma", duplicate_line(r"^\s+thread_gbps:"),
     r"^\s+thread_gbps:.*\n\s+(thread_gbps)", "thread_gbps", "duplicate key"),
    ("dma-total-below-channel", "zen3-epyc-ptdma", set_value("total_gbps", "0.001"),
     at("total_gbps", "0.001"), "engines.dma.total_gbps", "channel_gbps"),
    ("unknown-engine-section", "zen3-epyc-ptdma", sub(r"^(\s+)cpu:\s*$", r"\1cpuu: {}\n\1cpu:"),
     r"^\s+cpuu:", "engines.cpuu", "unknown section"),
    ("zero-capacity", "dram-cxl", set_value("capacity", "0"),
     at("capacity", "0"), "nodes.0.capacity", "positive"),
    ("bad-size", "dram-cxl", set_value("capacity", "12XB"),
     at("capacity", "12XB"), "nodes.0.capacity", "size"),
    ("not-a-number", "local", set_value("thread_gbps", "fast"),
     at("thread_gbps", "fast"), "memory.thread_gbps", "'fast'"),
    ("bool-is-not-a-number", "local", set_value("thread_gbps", "true"),
     at("thread_gbps", "true"), "memory.thread_gbps", "True"),
    ("infinite", "local", set_value("thread_gbps", ".inf"),
     at("thread_gbps", ".inf"), "memory.thread_gbps", "finite"),
    ("not-a-number-nan", "local", set_value("thread_gbps", ".nan"),
     at("thread_gbps", ".nan"), "memory.thread_gbps", "nan"),
    ("fraction-over-one", "gh200", set_value("pageable_factor", "1.5"),
     at("pageable_factor", "1.5"), "engines.gpu.pageable_factor", "(0, 1]"),
    ("fractional-cores", "zen3-epyc-ptdma", set_value("cores_per_ccd", "4.5"),
     at("cores_per_ccd", "4.5"), "nodes.0.cores_per_ccd", "whole number"),
    ("node-defined-twice", "zen3-epyc-ptdma", sub(r"^(\s*- id:) 1$", r"\1 0"),
     r"^\s*- id: 0\n(?:.*\n)*?\s*- (id): 0", "nodes.1.id", "defined twice"),
    ("provenance-kind", "local", sub(r"^(\s+kind:) assumed$", r"\1 guessed"),
     r"^\s+kind: guessed", "kind", "measured, fitted, assumed"),
    ("provenance-without-reason", "local", drop_block(r"^\s+reason:"),
     r"^\s+uncalibrated:", "provenance.uncalibrated", "an assumed provenance needs reason"),
    ("wrong-schema", "local", sub(r"^schema: 1$", "schema: 2"),
     r"^schema: 2", "schema", "schema: 1"),
    ("missing-cpu-engine", "local", drop_block(r"^\s+cpu:\s*$"),
     r"^engines:", "engines", "'cpu'"),
    ("missing-mt-engine", "local", drop_block(r"^\s+mt:\s*$"),
     r"^engines:", "engines", "'mt'"),
    ("pmd-not-multiple", "local", set_value("pmd_size", "6K"),
     r"^pmd_size:", "pmd_size", "multiple"),
    ("value-with-extra-key", "local",
     set_value("thread_gbps", "{value: 8, provenance: uncalibrated, note: x}"),
     r"^\s+thread_gbps:", "memory.thread_gbps", "value"),
]


@pytest.mark.parametrize(
    ("profile", "edit", "where", "key", "reason"),
    [case[1:] for case in BAD_PROFILES],
    ids=[case[0] for case in BAD_PROFILES],
)
def test_bad_profile_gives_one_sentence_with_file_line_and_key(
    profile_dir, profile: str, edit, where: str, key: str, reason: str
) -> None:
    path = profile_dir(profile, edit, filename="bad.yaml")
    text = path.read_text()
    match = re.search(where, text, flags=re.M)
    assert match, where
    start = match.start(match.lastindex) if match.lastindex else match.start()
    line = text.count("\n", 0, start) + 1
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert key in message and reason in message, message


def test_yaml_syntax_error_names_file_and_line(profile_dir) -> None:
    path = profile_dir("local", sub(r"^(\s+thread_gbps:) .*$", r"\1 [8"), filename="bad.yaml")
    broken = line_of(path.read_text(), r"^\s+thread_gbps: \[8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    found = re.match(rf"^{re.escape(str(path))}:(\d+): invalid YAML: ", message)
    assert found, message
    assert broken <= int(found.group(1)) <= broken + 1
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_profile(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: the file is empty"):
        load_profile(path)


def test_profile_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:1: expected a mapping"):
        load_profile(path)


def test_unreadable_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")


def test_yaml_tags_are_not_constructed(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("schema: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_profile(path)


# -- finding profiles ----------------------------------------------------------------------------


def test_find_profile_by_path(pm, profile_dir) -> None:
    path = profile_dir("gh200", filename="mine.yaml")
    assert find_profile(pm, str(path)).name == "gh200"


def test_find_profile_unknown_name_lists_known(pm) -> None:
    with pytest.raises(ConfigError, match=r"--hw nope: unknown hardware profile \(known: .*"
                                          r"zen3-epyc-ptdma"):
        find_profile(pm, "nope")


def test_find_profile_missing_file(pm, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such profile file"):
        find_profile(pm, str(tmp_path / "nope.yaml"))


def test_default_profile(pm) -> None:
    assert find_profile(pm, None).name == DEFAULT_PROFILE


def test_user_profile_takes_precedence(pm, user_profile_dir: Path) -> None:
    user = user_profile_dir
    shipped = find_profile(pm, "local")
    shipped.renamed("local", "calibrated here").write(user / "local.yaml")
    assert find_profile(pm, "local").description == "calibrated here"
    assert list_profiles(pm)["local"].description == "calibrated here"


def test_bad_user_profile_is_reported(pm, user_profile_dir: Path) -> None:
    (user_profile_dir / "broken.yaml").write_text("schema: 1\nname: broken\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        list_profiles(pm)


def test_profiles_are_immutable_and_derived_copies_never_change_the_original() -> None:
    from dataclasses import replace

    pm = get_plugin_manager()
    original = find_profile(pm, "zen3-epyc-ptdma")
    before = original.p("memory.link_gbps")
    sections = {s: dict(v) for s, v in original.sections.items()}
    sections["memory"]["link_gbps"] = replace(sections["memory"]["link_gbps"], value=1.0)
    derived = replace(original, sections=sections)  # no _flat={}: must still be safe
    assert derived.p("memory.link_gbps") == 1.0
    assert original.p("memory.link_gbps") == before
    with pytest.raises(TypeError):
        original.sections["memory"]["link_gbps"] = None  # read-only
    with pytest.raises(TypeError):
        original.nodes[0].params["ccds"] = None
    assert original.kernel == "6.16.0-rc6 + RFC V3"
