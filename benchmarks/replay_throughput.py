"""Replay throughput and memory: events per second against a plain numpy pass, peak RSS N vs 10N.

Generates a ``phases`` trace (hot set moving between 4 phases, events 10 ns
apart) into a native file, then in this process:

* **baseline**: read the same file chunk by chunk and count accesses per page
  with one ``np.bincount`` per chunk: the least any replay must do;
* **replay**: ``migpolicy.replay.replay`` with the default policy (NUMA
  balancing with kswapd-style demotion) on profile ``dram-cxl``, fast tier 25%,
  after a first small replay has loaded the compiled loops (numba; timed and
  printed on its own: a cost per process, not per event).

Prints events per second of both and their ratio, then the same replay in a
fresh process pinned to one CPU (target: 30 M events/s for the replay of 100 M
events on one core; with more CPUs a thread counts the next epochs ahead and
pyarrow decodes in another). Then the wall time of a small replay
(``--small-events``, 200 K: what a tuner runs thousands of times), best of 10,
with the context built once and with a fresh one each time. Then replays a
trace of N and of 10N events over the same ``--rss-pages`` pages (64 K, so that both touch every
page: per-page state is not what grows with length) in two fresh processes and
prints each one's peak RSS and the ratio (target: within 1.2x: memory must not
grow with the trace's length).

    python benchmarks/replay_throughput.py [--events 100M] [--pages 1M] [--small-events 200K]
        [--rss-events 10M] [--rss-pages 64K] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _count(text: str) -> int:
    """``100M`` → 100,000,000 (decimal, as event counts are)."""
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def generate(path: Path, events: int, pages: int) -> float:
    """Write a phases trace to ``path``; return the seconds it took."""
    from migpolicy.plugin_manager import get_plugin_manager
    from migpolicy.traces import generated_trace, trace_generators, write_native

    start = time.perf_counter()
    pm = get_plugin_manager(entry_points=False)
    trace = generated_trace(trace_generators(pm)["phases"], events, pages, 1, {})
    with open(path, "wb") as handle:
        write_native(trace, handle)
    return time.perf_counter() - start


def replay_once(path: Path, policy: str) -> tuple[float, dict, float]:
    """Replay the trace at ``path``; return (seconds, result dict, CPU seconds of the process:
    the replay and the reader's decoding thread)."""
    from migpolicy.context import build_context
    from migpolicy.replay import ReplayOptions, replay
    from migpolicy.traces import open_trace

    promotion, _, demotion = policy.partition("+")
    ctx = build_context(hw="dram-cxl", params={"placement": promotion,
                                               "placement.demotion": demotion or "none"})
    trace = open_trace(path, ctx.pm)
    start, cpu = time.perf_counter(), time.process_time()
    result = replay(trace, ctx, ReplayOptions(fast="25%"))
    return time.perf_counter() - start, result.as_dict(), time.process_time() - cpu


def small_replay(path: Path, policy: str, runs: int = 10) -> tuple[float, float]:
    """Best wall time (s) of replaying ``path``: context built once, and built every time."""
    from migpolicy.context import build_context
    from migpolicy.replay import ReplayOptions, replay
    from migpolicy.traces import open_trace

    promotion, _, demotion = policy.partition("+")
    params = {"placement": promotion, "placement.demotion": demotion or "none"}
    ctx = build_context(hw="dram-cxl", params=params)
    trace = open_trace(path, ctx.pm)
    reused = fresh = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        replay(trace, ctx, ReplayOptions(fast="25%"))
        reused = min(reused, time.perf_counter() - start)
        start = time.perf_counter()
        replay(trace, build_context(hw="dram-cxl", params=params, pm=ctx.pm),
               ReplayOptions(fast="25%"))
        fresh = min(fresh, time.perf_counter() - start)
    return reused, fresh


def baseline_once(path: Path) -> tuple[float, int]:
    """Read the trace and bincount every chunk; return (seconds, events)."""
    from migpolicy.replay.epochs import CHUNK
    from migpolicy.traces import open_trace

    trace = open_trace(path)
    pages = trace.meta.distinct_pages
    start = time.perf_counter()
    events = 0
    total = np.zeros(pages)
    for chunk in trace.chunks(CHUNK):
        total += np.bincount(chunk["page"], weights=chunk["weight"], minlength=pages)
        events += len(chunk)
    return time.perf_counter() - start, events


def _peak_rss() -> int:
    """This process's peak RSS (bytes): ``VmHWM``, which starts afresh at ``exec``.

    Not ``ru_maxrss``: Linux carries it over ``exec`` from the process that
    forked the child, so every child would report at least this benchmark's
    own peak (the 100 M-event replay before it).
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_rss_child(path: Path, policy: str) -> int:
    """Peak RSS (bytes) of a fresh process replaying ``path``."""
    out = subprocess.run([sys.executable, __file__, "--child", str(path), "--policy", policy],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1])


def one_cpu_child(path: Path, warm: Path, policy: str) -> float:
    """Seconds a fresh process pinned to one CPU (all its threads: pinned before it starts)
    takes to replay ``path``, after a replay of ``warm`` has loaded the compiled loops."""
    cpu = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, __file__, "--one-cpu", str(path), str(warm),
                          "--policy", policy], check=True, capture_output=True, text=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, {cpu})).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="100M", help="events of the throughput trace")
    parser.add_argument("--pages", default="1M", help="pages the traces touch")
    parser.add_argument("--small-events", default="200K", help="events of the small replay")
    parser.add_argument("--rss-events", default="10M", help="N for the N vs 10N RSS check")
    parser.add_argument("--rss-pages", default="64K",
                        help="pages of the RSS traces: few enough that N events touch them all")
    parser.add_argument("--policy", default="numab+watermark")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one-cpu", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        replay_once(Path(args.child), args.policy)
        print(_peak_rss())
        return
    if args.one_cpu:
        replay_once(Path(args.one_cpu[1]), args.policy)
        print(replay_once(Path(args.one_cpu[0]), args.policy)[0])
        return
    events, pages, small = _count(args.events), _count(args.pages), _count(args.rss_events)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.mpt"
        gen_s = generate(big, events, pages)
        base_s, base_events = baseline_once(big)
        few = Path(tmp) / "small.mpt"
        generate(few, _count(args.small_events), min(pages, 64_000))
        first_s = replay_once(few, args.policy)[0]  # loads the compiled loops: once per process
        replay_s, result, replay_cpu_s = replay_once(big, args.policy)
        one_cpu_s = one_cpu_child(big, few, args.policy)
        small_s = small_replay(few, args.policy)
        rss_paths = [Path(tmp) / "n.mpt", Path(tmp) / "10n.mpt"]
        rss_pages = _count(args.rss_pages)
        generate(rss_paths[0], small, rss_pages)
        generate(rss_paths[1], 10 * small, rss_pages)
        rss = [peak_rss_child(p, args.policy) for p in rss_paths]
    figures = {
        "events": events, "pages": pages, "policy": args.policy,
        "epochs": result["epochs"], "generate_s": gen_s,
        "baseline_s": base_s, "baseline_events_per_s": base_events / base_s,
        "replay_s": replay_s, "replay_events_per_s": result["events"] / replay_s,
        "replay_vs_baseline": (result["events"] / replay_s) / (base_events / base_s),
        "replay_cpu_s": replay_cpu_s, "replay_events_per_cpu_s": result["events"] / replay_cpu_s,
        "one_cpu_s": one_cpu_s, "one_cpu_events_per_s": result["events"] / one_cpu_s,
        "target_events_per_s": 30e6,
        "first_small_replay_s": first_s,
        "small_events": _count(args.small_events),
        "small_replay_s": small_s[0], "small_replay_with_context_s": small_s[1],
        "rss_events": [small, 10 * small], "rss_pages": _count(args.rss_pages),
        "peak_rss_bytes": rss,
        "rss_ratio_10n_vs_n": rss[1] / rss[0], "rss_target_ratio": 1.2,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"trace: phases, {events:,} events over {pages:,} pages (generated and written in "
          f"{gen_s:.1f} s); policy {args.policy}, {result['epochs']:,} epochs")
    print(f"baseline (read + bincount per chunk): {figures['baseline_events_per_s'] / 1e6:8.2f} "
          f"M events/s ({base_s:.2f} s)")
    print(f"replay:                               {figures['replay_events_per_s'] / 1e6:8.2f} "
          f"M events/s ({replay_s:.2f} s)  = {figures['replay_vs_baseline']:.2f}x the baseline")
    print(f"replay on one CPU:                    {figures['one_cpu_events_per_s'] / 1e6:8.2f} "
          f"M events/s ({one_cpu_s:.2f} s; a fresh process pinned to one CPU); target 30 M "
          "events/s on one core")
    print(f"  CPU time {replay_cpu_s:.2f} s (the replay and the reader's decoding thread): "
          f"{figures['replay_events_per_cpu_s'] / 1e6:.2f} M events per CPU second")
    print(f"small replay of {figures['small_events']:,} events: {small_s[0] * 1e3:.1f} ms "
          f"(context built once), {small_s[1] * 1e3:.1f} ms with a fresh context; best of 10; "
          f"the process's first replay, which loads the compiled loops: {first_s:.2f} s")
    print(f"peak RSS: {small:,} events {rss[0] / 2**20:.1f} MiB, {10 * small:,} events "
          f"{rss[1] / 2**20:.1f} MiB: ratio {figures['rss_ratio_10n_vs_n']:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
