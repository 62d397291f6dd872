"""Meta-tests: every hook is documented in docs/plugins.md, in one docstring style, and tested.

Also: the data model and descriptor tables in docs/plugins.md name every
field, and every Python example there is a valid plugin (it imports, and
pluggy accepts its hook implementations).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
from pathlib import Path

import pluggy
import pytest

from migpolicy import hookspecs
from migpolicy.context import build_context
from migpolicy.costs import COST_DTYPE
from migpolicy.engines import CopyEngine
from migpolicy.folios import BUSY, FOLIO_DTYPE, PINNED, PMD_MAPPED, BatchPlan
from migpolicy.params import Parameter
from migpolicy.pipeline import price_uniform
from migpolicy.plugin_manager import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = [name for name in vars(hookspecs) if name.startswith("migpolicy_")]
PY_BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC, flags=re.S | re.M)


def _signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in hookspecs.py."""
    sig = inspect.signature(getattr(hookspecs, name))
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({args}) -> {sig.return_annotation}"


def _section(name: str) -> str:
    """The text of the docs section headed ``### name``, up to the next heading."""
    match = re.search(rf"^### {name}\n(.*?)(?=^#)", DOC + "\n#", flags=re.S | re.M)
    assert match, f"docs/plugins.md has no heading '### {name}'"
    return match.group(1)


def test_hooks_found() -> None:
    assert len(HOOKS) >= 11
    assert {"migpolicy_isolate", "migpolicy_copy", "migpolicy_account"} <= set(HOOKS)


def test_every_hook_has_a_heading_in_file_order() -> None:
    headings = re.findall(r"^### (migpolicy_\w+)$", DOC, flags=re.M)
    assert headings == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_hook_section_has_signature_semantics_and_example(name: str) -> None:
    section = _section(name)
    assert f"`{_signature(name)}`" in section, f"{name}: signature missing or stale"
    firstresult = getattr(hookspecs, name).migpolicy_spec["firstresult"]
    assert ("firstresult" in section) == firstresult, f"{name}: say whether it is firstresult"
    if not firstresult:
        assert "Collecting" in section, f"{name}: say that every answer is used"
    assert "Called " in section, f"{name}: say who calls it when"
    assert re.search(r"^Returns |[Rr]eturns? ", section, flags=re.M), f"{name}: what it returns"
    assert f"def {name}(" in section and "@hookimpl" in section, f"{name}: no example"


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_docstring_style(name: str) -> None:
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec)
    assert doc, f"{name} has no docstring"
    summary, _, body = doc.partition("\n\n")
    assert "\n" not in summary and summary.endswith("."), f"{name}: one-line summary"
    assert summary[0].isupper() and not summary.startswith(("This hook", "Hook")), name
    documented = re.findall(r"^:param (\w+):", body, flags=re.M)
    assert documented == list(inspect.signature(spec).parameters), f"{name}: :param: entries"
    assert body.count(":returns:") == 1, f"{name}: one :returns: entry"
    closing = body.split("\n\n")[-1]
    assert "Called " in closing, f"{name}: the last paragraph says who calls it when"
    assert ("firstresult" in closing) == spec.migpolicy_spec["firstresult"], (
        f"{name}: the last paragraph says firstresult exactly when the spec is"
    )


def test_every_hook_is_tested() -> None:
    texts = {
        path.relative_to(ROOT): path.read_text(encoding="utf-8")
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.name != "test_docs.py"
    }
    untested = [name for name in HOOKS if not any(name in text for text in texts.values())]
    assert not untested, f"no test under tests/ mentions {untested}"


@pytest.mark.parametrize(
    ("what", "names"),
    [
        ("FOLIO_DTYPE", FOLIO_DTYPE.names),
        ("COST_DTYPE", COST_DTYPE.names),
        ("BatchPlan", [f.name for f in dataclasses.fields(BatchPlan) if f.repr]),
        ("CopyEngine", [f.name for f in dataclasses.fields(CopyEngine)]),
        ("Parameter", [f.name for f in dataclasses.fields(Parameter)]),
    ],
)
def test_data_model_fields_documented(what: str, names: tuple[str, ...]) -> None:
    assert what in DOC
    missing = [name for name in names if f"| `{name}`" not in DOC and f", `{name}`" not in DOC]
    assert not missing, f"docs/plugins.md does not document {what} fields {missing}"


def test_folio_flags_documented() -> None:
    for flag, value in (("PMD_MAPPED", PMD_MAPPED), ("PINNED", PINNED), ("BUSY", BUSY)):
        assert f"`{flag}` ({int(value)})" in DOC


@pytest.mark.parametrize("index", range(len(PY_BLOCKS)))
def test_python_examples_are_valid_plugins(index: int, tmp_path: Path) -> None:
    module = types.ModuleType(f"docs_example_{index}")
    module.__file__ = str(tmp_path / f"docs_example_{index}.py")
    exec(compile(PY_BLOCKS[index], module.__file__, "exec"), module.__dict__)
    pm = get_plugin_manager(entry_points=False)
    pm.register(module, name=module.__name__)
    pm.check_pending()
    run = build_context(pm=pm)  # its parameters resolve next to the built-ins'
    for parameter in getattr(module, "PARAMETERS", ()):
        assert parameter.coerce(parameter.default) == run.params[parameter.name]
    report = price_uniform(run.pm, 65536, 600, run.hw, run.params)
    assert report.folios == 600 and report.total_s > 0


def _load_examples(*markers: str) -> pluggy.PluginManager:
    """Built-ins plus the docs' examples containing ``markers``, one module each."""
    pm = get_plugin_manager(entry_points=False)
    for marker in markers:
        (source,) = [block for block in PY_BLOCKS if marker in block]
        module = types.ModuleType(f"example_{len(pm.get_plugins())}")
        exec(compile(source, f"{module.__name__}.py", "exec"), module.__dict__)
        pm.register(module, name=module.__name__)
    return pm


def test_quick_start_plugin_prices_a_move() -> None:
    pm = _load_examples('name="flat"')
    run = build_context(pm=pm, params={"engine": "flat"})
    report = price_uniform(run.pm, 2 << 20, 512, run.hw, run.params)
    assert report.engines["flat"].wall_s == pytest.approx(512 * 1e-6 + (1 << 30) / 8e9)


def test_sdxi_examples_price_a_move() -> None:
    pm = _load_examples('name="mysdxi"', 'engine != "mysdxi"')
    run = build_context(pm=pm, params={"engine": "mysdxi", "workers": 4})
    report = price_uniform(run.pm, 65536, 1000, run.hw, run.params)
    assert report.engine_workers == {"mysdxi": [4]}
    assert report.engines["mysdxi"].engine_s > 0 and report.bytes == 65536 * 1000


def test_batch_example_splits_by_folio_size() -> None:
    pm = _load_examples('"bysize.enabled"')
    run = build_context(pm=pm, params={"bysize.enabled": True})
    assert set(price_uniform(run.pm, 4096, 600, run.hw, run.params).engines) == {"cpu"}
    thp = price_uniform(run.pm, run.hw.pmd_size, 600, run.hw, run.params)
    assert thp.engine_workers == {"mt": [8]}
    off = build_context(pm=pm)
    assert set(price_uniform(off.pm, off.hw.pmd_size, 600, off.hw, off.params).engines) == {"cpu"}
