"""Fixtures of the CLI tests: a small generated trace, a report page rendered in a browser.

Headless Chromium (the Debian package, installed by ``.ci/run``) loads a copy
of a report's ``index.html`` with a probe script that records, once the page
has loaded, each image's natural width and every error the page raised;
``--dump-dom`` hands the result back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def small_phases(phases_trace: Callable[[str, int], Path]) -> Path:
    """A ``phases`` trace of 60K events over 512 pages, made by ``migpolicy trace gen``."""
    return phases_trace("60K", 512)


@pytest.fixture
def render_in_chromium(tmp_path: Path) -> Callable[[Path], list[int]]:
    """``render(report_dir)`` → each image's natural width once ``index.html`` has loaded.

    Asserts that the page is self-contained (no http link) and loads without
    a page error or console error. Skips without Chromium.
    """
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs it)")

    def render(report: Path) -> list[int]:
        html = (report / "index.html").read_text()
        assert "http://" not in html and "https://" not in html  # self-contained
        probe = tmp_path / "probe.html"
        probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr",
             "--v=0", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120)
        match = re.search(r"widths=([\d,-]*);errors=(\d+)", proc.stdout)
        assert match, f"the probe did not run: {proc.stderr[-2000:]}"
        assert match.group(2) == "0"
        console_errors = [line for line in proc.stderr.splitlines()
                          if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
        assert not console_errors
        return [int(w) for w in match.group(1).split(",") if w]

    return render
