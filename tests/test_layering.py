"""Meta-test of the layering: plugins meet the core only through the contract.

Read from the source (every import statement, at any depth): a plugin imports
``migpolicy.contract``, the hardware library (``migpolicy.hardware.*``), the
real copy executors (``migpolicy.execute``) and its own private helpers
(``._name``); never the pipeline, the context, the plugin manager, another
plugin, the CLI or the tuner. The CLI, ``migpolicy.testing`` and the tuner
import no plugin module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted((ROOT / "plugins").glob("*.py"))
#: What a plugin may import from migpolicy.
PLUGIN_ALLOWED = ("migpolicy.contract", "migpolicy.hardware.", "migpolicy.hookspecs",
                  "migpolicy.execute")


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in ``path``; ``level`` > 0 for relative imports."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


@pytest.mark.parametrize("path", PLUGINS, ids=lambda p: p.name)
def test_plugins_import_only_the_contract_and_the_hardware_library(path: Path) -> None:
    for module, level in imports(path):
        if level:
            assert module.startswith("_"), f"{path.name} imports sibling plugin .{module}"
        elif module.startswith("migpolicy"):
            assert module.startswith(PLUGIN_ALLOWED), f"{path.name} imports {module}"


@pytest.mark.parametrize("folder", ["migpolicy/cli", "migpolicy/testing", "tuning"])
def test_core_never_imports_a_plugin(folder: str) -> None:
    for path in sorted((ROOT / folder).glob("*.py")):
        for module, level in imports(path):
            assert not module.startswith("migpolicy.plugins"), f"{path} imports {module}"
            assert not (level and module.startswith("plugins")), f"{path} imports {module}"


def test_hookspecs_needs_no_runtime_import_of_the_core() -> None:
    """The contract module and hookspecs import each other only for type checking."""
    runtime = [m for m, _ in imports(ROOT / "migpolicy" / "hookspecs.py")
               if m.startswith("migpolicy") and m != "migpolicy.contract"]
    assert not runtime
