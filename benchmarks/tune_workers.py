"""One tuning worker against two on PostgreSQL, for the same fixed budget of trials.

Generates a ``phases`` trace, starts a throwaway PostgreSQL (durable: fsync on,
as a real server; or takes ``--storage URL``), then times the whole command a
user runs, ``migpolicy tune TRACE --storage URL --study NEW --trials N --jobs J``,
for J = 1 and J = 2, alternating, ``--repeat`` times each, each on a new study.
Prints every wall time, the medians and their ratio (target: two workers at
least 1.7x faster than one on 2 cores). The wall time includes what does not
divide between workers (start-up, the baseline replay, the last trial): the
ratio is what a user gets, not the ideal of the trial loop alone.

    python benchmarks/tune_workers.py [--trials 60] [--events 200K] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_RATIO = 1.7


def _console_script() -> str:
    beside = Path(sys.executable).with_name("migpolicy")
    return str(beside) if beside.exists() else (shutil.which("migpolicy") or "migpolicy")


def tune_wall_s(exe: str, trace: Path, url: str, trials: int, jobs: int) -> tuple[float, dict]:
    """Wall time of one ``migpolicy tune`` command on a new study, and its JSON."""
    begin = time.perf_counter()
    done = subprocess.run([exe, "tune", str(trace), "--storage", url, "--study",
                           f"bench-{uuid.uuid4().hex}", "--trials", str(trials), "--jobs",
                           str(jobs), "--seed", "1", "--json"], check=True, capture_output=True,
                          text=True)
    return time.perf_counter() - begin, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--events", default="200K")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="PostgreSQL URL to use instead of a throwaway server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    exe = _console_script()
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "phases.mpt"
        subprocess.run([exe, "trace", "gen", "phases", "--out", str(trace), "--events",
                        args.events, "--pages", "1024", "--param", "interval_ns=100"],
                       check=True, capture_output=True)
        server = None
        if args.storage is None:
            from migpolicy.testing.postgres import start_server, stop_server

            server = start_server(durable=True)
        url = args.storage or server.url
        walls: dict[int, list[float]] = {1: [], 2: []}
        outcomes: dict[int, list[dict]] = {1: [], 2: []}
        try:
            for _ in range(args.repeat):
                for jobs in (1, 2):
                    wall, data = tune_wall_s(exe, trace, url, args.trials, jobs)
                    walls[jobs].append(wall)
                    outcomes[jobs].append(data["run"])
        finally:
            if server is not None:
                stop_server(server.folder)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    result = {"trials": args.trials, "events": args.events, "repeat": args.repeat,
              "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
              "wall_s": {"1": walls[1], "2": walls[2]},
              "median_s": {"1": one, "2": two}, "ratio": one / two,
              "target_ratio": TARGET_RATIO, "runs": outcomes}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"migpolicy tune, {args.trials} trials on a {args.events}-event phases trace, "
          f"PostgreSQL storage, {os.cpu_count()} CPUs (load {result['load_avg_1min']:.1f})")
    for jobs in (1, 2):
        times = ", ".join(f"{w:.1f}" for w in walls[jobs])
        print(f"  --jobs {jobs}: {times} s (median {result['median_s'][str(jobs)]:.1f} s)")
    print(f"two workers / one: {result['ratio']:.2f}x faster (target >= {TARGET_RATIO}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
