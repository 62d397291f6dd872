"""The replay report renders in a real browser: every figure loads, no console error.

Headless Chromium (the Debian package, installed by ``.ci/run``) loads a copy
of ``index.html`` with a probe script that records, once the page has loaded,
each image's natural width and every error the page raised; ``--dump-dom``
hands the result back.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from migpolicy.context import build_context
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions, replay_many
from migpolicy.replay.report import FIGURES, write_report
from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<script>
window.probeErrors = [];
window.addEventListener('error', e => window.probeErrors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  out.id = 'probe';
  const widths = Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1);
  out.textContent = 'widths=' + widths.join(',') + ';errors=' + window.probeErrors.length;
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)")
def test_the_report_renders_in_chromium(tmp_path):
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
    html = (report / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    probe = report / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r"widths=([\d,-]*);errors=(\d+)", proc.stdout)
    assert match, f"the probe did not run: {proc.stderr[-2000:]}"
    widths = [int(w) for w in match.group(1).split(",") if w]
    assert len(widths) == len(FIGURES)
    assert all(w > 100 for w in widths), widths
    assert match.group(2) == "0"
    console_errors = [line for line in proc.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert not console_errors
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
