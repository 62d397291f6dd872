"""One tuning worker against two on PostgreSQL, for the same fixed budget of trials.

Starts a throwaway PostgreSQL (durable: fsync on, as a real server; or takes
``--storage URL``), then for each job size (``--sizes``, trials x events of a
generated ``phases`` trace) times the whole command a user runs,
``migpolicy tune TRACE --storage URL --study NEW --trials N --jobs J``, for
J = 1 and J = 2, alternating, ``--repeat`` times each, each on a new study.
Prints every wall time, the medians and their ratio (target: two workers at
least 1.7x faster than one on 2 cores). The wall time includes what does not
divide between workers (start-up: imports, the storage, the baseline replay,
loading the compiled loops and scikit-learn, about 2 s here): the ratio is
what a user gets, not the ideal of the trial loop alone. The default sizes are
a small job (60 trials of a 200 K-event trace: about 14 s with one worker, so
start-up weighs) and one of the README's trace size (100 trials of 1 M
events).

    python benchmarks/tune_workers.py [--sizes 60x200K,100x1M] [--repeat 3] [--json]
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


def measure(exe: str, url: str, folder: Path, trials: int, events: str,
            repeat: int) -> dict:
    """Wall times of ``--jobs 1`` and ``--jobs 2`` for one job size, and their ratio."""
    trace = folder / f"phases-{events}.mpt"
    subprocess.run([exe, "trace", "gen", "phases", "--out", str(trace), "--events", events,
                    "--pages", "1024", "--param", "interval_ns=100"],
                   check=True, capture_output=True)
    walls: dict[int, list[float]] = {1: [], 2: []}
    outcomes: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(repeat):
        for jobs in (1, 2):
            wall, data = tune_wall_s(exe, trace, url, trials, jobs)
            walls[jobs].append(wall)
            outcomes[jobs].append(data["run"])
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    return {"trials": trials, "events": events, "wall_s": {"1": walls[1], "2": walls[2]},
            "median_s": {"1": one, "2": two}, "ratio": one / two,
            "met": one / two >= TARGET_RATIO, "runs": outcomes}


def _size(text: str) -> tuple[int, str]:
    trials, sep, events = text.strip().lower().partition("x")
    if not sep or not trials.isdigit() or not events:
        raise argparse.ArgumentTypeError(f"expected TRIALSxEVENTS such as 60x200K, got {text!r}")
    return int(trials), events.upper()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60x200K,100x1M",
                        help="job sizes as TRIALSxEVENTS, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="PostgreSQL URL to use instead of a throwaway server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        sizes = [_size(text) for text in args.sizes.split(",")]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    exe = _console_script()
    server = None
    if args.storage is None:
        from migpolicy.testing.postgres import start_server, stop_server

        server = start_server(durable=True)
    url = args.storage or server.url
    try:
        with tempfile.TemporaryDirectory() as folder:
            results = [measure(exe, url, Path(folder), trials, events, args.repeat)
                       for trials, events in sizes]
    finally:
        if server is not None:
            stop_server(server.folder)
    result = {"repeat": args.repeat, "cpus": os.cpu_count(),
              "load_avg_1min": os.getloadavg()[0], "target_ratio": TARGET_RATIO,
              "sizes": results}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"migpolicy tune on a phases trace, PostgreSQL storage, {os.cpu_count()} CPUs "
          f"(load {result['load_avg_1min']:.1f}); target: two workers >= {TARGET_RATIO}x")
    for size in results:
        print(f"{size['trials']} trials x {size['events']} events:")
        for jobs in (1, 2):
            times = ", ".join(f"{w:.1f}" for w in size["wall_s"][str(jobs)])
            print(f"  --jobs {jobs}: {times} s (median {size['median_s'][str(jobs)]:.1f} s)")
        print(f"  two workers / one: {size['ratio']:.2f}x faster "
              f"({'met' if size['met'] else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
