"""docs/traces.md: it documents every event field, metadata field, format and generator, and its
plugin example works as a plugin."""

from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

import numpy as np
import pytest

from migpolicy.errors import InputError
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.traces import EVENT_DTYPE, TraceMeta, open_trace, trace_formats, trace_generators

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "traces.md").read_text(encoding="utf-8")


def test_every_field_format_and_generator_is_documented(builtin_pm) -> None:
    for name in EVENT_DTYPE.names:
        assert f"| `{name}` |" in DOC, name
    for field in dataclasses.fields(TraceMeta):
        assert f"`{field.name}`" in DOC, field.name
    for name in [*trace_formats(builtin_pm), *trace_generators(builtin_pm)]:
        assert f"| `{name}` |" in DOC, name


def test_plugin_example_reads_its_format(tmp_path: Path) -> None:
    (source,) = re.findall(r"^```python\n(.*?)^```", DOC, flags=re.S | re.M)
    module = types.ModuleType("memtrace_plugin")
    exec(compile(source, "memtrace_plugin.py", "exec"), module.__dict__)
    pm = get_plugin_manager(entry_points=False)
    pm.register(module, name="memtrace_plugin")
    pm.check_pending()
    path = tmp_path / "run.memtrace"
    path.write_text("#memtrace\n" + "".join(f"{10 * i},{hex(0x7f0000 + 64 * i)},{'RW'[i % 2]}\n"
                                            for i in range(200)))
    trace = open_trace(path, pm, options={"tenant": "4"})
    events = np.concatenate(list(trace.chunks()))
    assert trace.meta.source_format == "memtrace" and len(events) == 200
    assert (events["tenant"] == 4).all() and (events["op"] == 2).sum() == 100
    assert trace.meta.distinct_pages == len({(0x7f0000 + 64 * i) // 4096 for i in range(200)})
    path.write_text("#memtrace\n10,0x1000,R\n20,0x2000,X\n")
    with pytest.raises(InputError, match=r"run.memtrace: line 3: expected t_ns,address,R\|W"):
        list(open_trace(path, pm).chunks())
