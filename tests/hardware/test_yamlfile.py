"""Safe YAML reading: alias bombs, recursion, depth, encodings, duplicate keys, key lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from migpolicy.errors import ConfigError
from migpolicy.hardware.yamlfile import MAX_DEPTH, MAX_NODES, read_yaml


def billion_laughs(levels: int = 9) -> str:
    """The classic nine-line alias bomb: 9**9 strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    begin = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"bomb.yaml:\d+: aliases expand this document to "
                                          rf"more than {MAX_NODES:,} values"):
        read_yaml(path)
    assert time.perf_counter() - begin < 1.0


def test_a_few_aliases_are_fine_and_their_lines_are_known(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nnode0: *b\nnode1:\n  z: *b\n")
    data, lines = read_yaml(path)
    assert data == {"base": {"x": 1, "y": 2}, "node0": {"x": 1, "y": 2},
                    "node1": {"z": {"x": 1, "y": 2}}}
    assert lines[("base",)] == 1 and lines[("node0",)] == 2 and lines[("node1", "z")] == 4
    assert lines[("base", "x")] == 1


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text("a: &x [1, *x]\n")
    with pytest.raises(ConfigError, match=r"rec.yaml:1: an alias refers to a value that "
                                          r"contains it"):
        read_yaml(path)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError, match=r"deep.yaml:1: (nested more than|invalid YAML)"):
        read_yaml(path)


@pytest.mark.parametrize(("data", "needle"), [
    ("name: caf\xe9\n".encode("latin-1"), r"x.yaml:1: byte 0xe9 at column 10 is not UTF-8"),
    ("a: 1\nb: 2\n".encode("utf-16"), r"x.yaml:1: byte 0xff at column 1 is not UTF-8"),
    (b"", r"x.yaml: the file is empty"),
    (b"a: 1\na: 2\n", r"x.yaml:2: duplicate key 'a'"),
    (b"? [1, 2]\n: 3\n", r"x.yaml:1: a key must be a plain value"),
    (b"a: [1, 2\n", r"x.yaml:\d+: invalid YAML"),
    (b"a: !!python/object:os.system {}\n", r"x.yaml:1: invalid YAML"),
])
def test_bad_files_are_one_sentence_with_file_and_line(tmp_path: Path, data: bytes,
                                                       needle: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=needle) as caught:
        read_yaml(path)
    assert "\n" not in str(caught.value)


_scalars = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none(),
                     st.floats(allow_nan=False))
_documents = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(min_size=1, max_size=6), kids,
                                                max_size=4)), max_leaves=20)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), _documents, min_size=1, max_size=4))
def test_any_plain_mapping_round_trips_with_a_line_per_key(tmp_path_factory, doc) -> None:
    path = tmp_path_factory.mktemp("y") / "doc.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    data, lines = read_yaml(path)
    assert data == doc
    assert all((key,) in lines for key in doc)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_load_or_fail_as_one_config_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("y") / "fuzz.yaml"
    path.write_bytes(data)
    try:
        read_yaml(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
