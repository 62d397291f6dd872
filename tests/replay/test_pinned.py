"""Every figure a replay prints, pinned on generated and recorded traces.

The replay's arithmetic is vectorised and tuned for speed; none of that may
change a result. ``data/pinned_figures.json`` holds the ``--json`` object
(the provenance and the final placement as digests) of each case below as the reference
model computed them; every case must reproduce it exactly, float for float.
A deliberate change of the model regenerates the file with
``python tests/replay/test_pinned.py --write`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from migpolicy.context import build_context
from migpolicy.contract import IsolateResult, hookimpl, zero_costs
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.replay import ReplayOptions, replay_many
from migpolicy.traces import generated_trace, open_trace, trace_generators, write_native

HERE = Path(__file__).resolve().parent
PINNED = HERE / "data" / "pinned_figures.json"
LACKEY = HERE.parent / "traces" / "data" / "true.lackey.gz"
DAMO = HERE.parents[1] / ".." / "shared" / "data" / "damo" / "damon.data"

POLICIES = ("none+none", "numab+watermark", "hist+watermark", "damos+watermark", "numab+none")

#: name → (trace, policies, options, extra context parameters)
CASES: dict[str, tuple[tuple, tuple[str, ...], dict[str, Any], dict[str, Any]]] = {
    "phases": (("gen", "phases", 300_000, 8192, {"interval_ns": 100}), POLICIES,
               {"epoch_ns": 100_000, "window_epochs": 16}, {}),
    "phases-small-fast": (("gen", "phases", 200_000, 4096, {"interval_ns": 50}),
                          POLICIES[1:4], {"fast": "10%", "epoch_ns": 200_000}, {}),
    "phases-loaded": (("gen", "phases", 200_000, 4096, {"interval_ns": 50}),
                      ("hist+watermark", "damos+watermark"),
                      {"epoch_ns": 50_000, "window_epochs": 4}, {"system.load": 0.5}),
    "tenants": (("gen", "tenants", 200_000, 6000, {"interval_ns": 20}), POLICIES[:4],
                {"epoch_ns": 100_000}, {}),
    "gups-interleave": (("gen", "gups", 150_000, 3000, {"interval_ns": 30}), POLICIES[1:4],
                        {"initial": "interleave", "scale": 2.0, "max_events": 120_000,
                         "epoch_ns": 300_000}, {}),
    "zipf-fits": (("gen", "zipf", 100_000, 512, {"interval_ns": 1000}), POLICIES[:4],
                  {"fast": "200%"}, {}),
    "scan-slow": (("gen", "scan", 100_000, 2048, {"interval_ns": 100}), POLICIES[1:4],
                  {"initial": "slow", "epoch_ns": 400_000}, {}),
    "lackey": (("file", LACKEY), POLICIES[:4], {"epoch_ns": 5000}, {}),
    "failing-isolate": (("gen", "phases", 300_000, 4096, {"interval_ns": 100}),
                        ("hist+watermark", "numab+watermark"),
                        {"epoch_ns": 100_000, "window_epochs": 8}, {"fail_odd": True}),
    "damo": (("file", DAMO), POLICIES[:4], {}, {}),
}


class _FailOddPages:
    """An isolate stage that fails every folio of an odd page (as if pinned)."""

    @hookimpl(tryfirst=True)
    def migpolicy_isolate(self, folios, hw):
        failed = folios["page"] % 2 == 1
        costs = zero_costs(len(folios))
        return IsolateResult(costs=costs, isolated=~failed)


def _trace(spec: tuple, pm, tmp: Path):
    if spec[0] == "file":
        return open_trace(spec[1], pm)
    _, kind, events, pages, options = spec
    path = tmp / f"{kind}-{events}-{pages}.mpt"
    with open(path, "wb") as handle:
        write_native(generated_trace(trace_generators(pm)[kind], events, pages, 7, options),
                     handle)
    return open_trace(path, pm)


def figures(case: str, tmp: Path) -> list[dict[str, Any]]:
    """The JSON objects of one case's replays, plus a digest of each final placement."""
    spec, policies, options, extra = CASES[case]
    pm = get_plugin_manager(entry_points=False)
    params = {k: v for k, v in extra.items() if k != "fail_odd"}
    if extra.get("fail_odd"):
        pm.register(_FailOddPages(), name="fail_odd")
    contexts = []
    for policy in policies:
        promotion, _, demotion = policy.partition("+")
        contexts.append(build_context(pm=pm, hw="dram-cxl", params={
            "placement": promotion, "placement.demotion": demotion, **params}))
    results = replay_many(_trace(spec, pm, tmp), contexts, ReplayOptions(**options))
    out = []
    for result in results:
        data = json.loads(json.dumps(result.as_dict()))
        data.pop("trace")  # the file name differs between runs
        data["provenance"] = _digest(json.dumps(data["provenance"], sort_keys=True).encode())
        data["placement_sha256"] = _digest(np.ascontiguousarray(result.placement.node_of)
                                           .tobytes())
        out.append(data)
    return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _available(case: str) -> bool:
    spec = CASES[case][0]
    return spec[0] != "file" or spec[1].exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_figures_are_unchanged(case, tmp_path):
    if not _available(case):
        pytest.skip(f"{CASES[case][0][1]} is not here")
    pinned = json.loads(PINNED.read_text())
    if case not in pinned:
        pytest.skip(f"case {case} was pinned where its trace was absent")
    got = figures(case, tmp_path)
    assert len(got) == len(pinned[case])
    for want, have in zip(pinned[case], got, strict=True):
        policy = want["policy"]
        assert have.keys() == want.keys(), policy
        for key in want:
            assert have[key] == want[key], f"{case} {policy}: {key}"


def _write() -> None:
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in sorted(CASES):
            if _available(case):
                out[case] = figures(case, Path(tmp))
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps(out, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/replay/test_pinned.py --write")
    _write()
