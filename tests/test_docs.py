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

import numpy as np
import pluggy
import pytest

from migpolicy import hookspecs
from migpolicy.context import build_context
from migpolicy.costs import COST_DTYPE
from migpolicy.engines import CopyEngine
from migpolicy.folios import (
    BUSY,
    FOLIO_DTYPE,
    PINNED,
    PMD_MAPPED,
    REQUEST_DTYPE,
    RESULT_DTYPE,
    BatchPlan,
)
from migpolicy.params import Parameter
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.testing import Workload, drive
from migpolicy.tuning.space import build_space

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


def test_every_hook_is_called_through_migpolicy(pytestconfig: pytest.Config) -> None:
    """Every hook was called by migpolicy's own code while the suite ran (this test runs last)."""
    every_file = {path.resolve() for path in (ROOT / "tests").rglob("test_*.py")}
    if not every_file <= pytestconfig.migpolicy_collected_files:
        pytest.skip("only meaningful when the whole suite runs")
    uncalled = [name for name in HOOKS if name not in pytestconfig.migpolicy_hooks_called]
    assert not uncalled, f"no test calls {uncalled} through migpolicy code"


@pytest.mark.parametrize(
    ("what", "names"),
    [
        ("FOLIO_DTYPE", FOLIO_DTYPE.names),
        ("COST_DTYPE", COST_DTYPE.names),
        ("REQUEST_DTYPE", REQUEST_DTYPE.names),
        ("RESULT_DTYPE", RESULT_DTYPE.names),
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
    report = run.price_uniform(65536, 600)
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
    report = run.price_uniform(2 << 20, 512)
    assert report.engines["flat"].wall_s == pytest.approx(512 * 1e-6 + (1 << 30) / 8e9)


def test_ring_examples_price_a_move() -> None:
    pm = _load_examples('name="ring"', 'engine != "ring"')
    run = build_context(pm=pm, params={"engine": "ring", "workers": 4})
    report = run.price_uniform(65536, 1000)
    assert report.engine_workers == {"ring": [4]}
    assert report.engines["ring"].engine_s > 0 and report.bytes == 65536 * 1000


def test_batch_example_splits_by_folio_size() -> None:
    pm = _load_examples('"bysize.enabled"')
    run = build_context(pm=pm, params={"bysize.enabled": True})
    assert set(run.price_uniform(4096, 600).engines) == {"cpu"}
    thp = run.price_uniform(run.hw.pmd_size, 600)
    assert thp.engine_workers == {"mt": [8]}
    off = build_context(pm=pm)
    assert set(off.price_uniform(off.hw.pmd_size, 600).engines) == {"cpu"}


def test_placement_example_keeps_the_conformance_invariants() -> None:
    """The docs' policy promotes hot pages within capacity and its rate limit, repeatably."""
    pm = _load_examples('"hot.rate_mbps"')
    run = build_context(pm=pm, params={"placement": "hot", "hot.rate_mbps": 40.0})
    info = run.policies["hot"]
    workload = Workload()
    moves = drive(info, run.params, run.hw, seed=1, workload=workload)
    limit = 40.0 * 1e6 * workload.epoch_ns / 1e9
    promoted = [int((m["dst"] == 0).sum()) * workload.page_bytes for m in moves]
    assert 0 < max(promoted) <= limit
    assert sum(promoted) <= workload.pages * workload.fast_share * workload.page_bytes
    again = drive(info, run.params, run.hw, seed=1, workload=workload)
    assert all(np.array_equal(a, b) for a, b in zip(moves, again, strict=True))


def test_narrowing_example_narrows_the_space() -> None:
    pm = _load_examples("IntDistribution(1, 256")
    run = build_context(pm=pm)
    assert build_space(run.pm, run.hw).distributions["batch.max_folios"].high == 256
