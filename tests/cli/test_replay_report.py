"""The replay report renders in a real browser and is written whole or not at all."""

from __future__ import annotations

import pytest

from migpolicy.context import build_context
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions, replay_many
from migpolicy.replay.report import FIGURES, write_report
from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native


def test_the_report_renders_in_chromium(tmp_path, render_in_chromium):
    pm = get_plugin_manager(entry_points=False)
    path = tmp_path / "phases.mpt"
    made = generated_trace(trace_generators(pm)["phases"], 200_000, 1024, 1,
                           {"interval_ns": 100})
    with open(path, "wb") as handle:
        write_native(made, handle)
    contexts = [build_context(pm=pm, hw="dram-cxl", params={"placement": p,
                                                            "placement.demotion": d})
                for p, d in (("none", "none"), ("numab", "watermark"), ("hist", "watermark"))]
    results = replay_many(open_trace(path, pm), contexts, ReplayOptions())
    data = [dict(r.as_dict(), label=label) for r, label in zip(
        results, ("none", "numab+watermark", "hist+watermark"), strict=True)]
    report = write_report(tmp_path / "report", data)
    widths = render_in_chromium(report)
    assert len(widths) == len(FIGURES)
    assert all(w > 100 for w in widths), widths
    html = (report / "index.html").read_text()
    for name in ("none", "numab+watermark", "hist+watermark", "oracle"):
        assert name in html


def test_a_failure_while_writing_leaves_the_old_report_whole(tmp_path, monkeypatch):
    """The report is built beside DIR and renamed: an error half way changes nothing."""
    from migpolicy.replay import report as report_module

    target = tmp_path / "report"
    target.mkdir()
    (target / "replay.json").write_text('{"results": []}')

    def broken(out, results):
        (out / "timeline.png").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module, "_figures", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(target, [{"label": "none"}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert [p.name for p in target.iterdir()] == ["replay.json"]
    assert (target / "replay.json").read_text() == '{"results": []}'
