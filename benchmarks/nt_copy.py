"""Non-temporal against cached stores on this machine: copy bandwidth and what stays cached.

glibc's ``memcpy`` (which ``numpy.copyto`` calls) copies with non-temporal
stores above ``glibc.cpu.x86_non_temporal_threshold`` and with ordinary
(cached) vector stores below it and below ``x86_rep_movsb_threshold``. Each
measurement runs in a child process whose ``GLIBC_TUNABLES`` forces one or
the other, so the same copy is timed both ways:

* copy bandwidth of a buffer far larger than the cache (memory-bound: the
  cached copy also reads the destination for ownership), best of repeats;
* the read bandwidth of the destination right after copying a buffer that fits
  in the cache: fast if the copy left it cached, memory speed if not.

The ratios are what ``memory.nt_factor`` and the engines' ``cache_resident``
figure model (assumed 1.5 and 1 vs 0 in the shipped profiles). x86-64 with
glibc only; elsewhere the script says so and exits.

    python benchmarks/nt_copy.py [--big 256] [--small 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

MODES = {
    "nt": "glibc.cpu.x86_non_temporal_threshold=0x10000:glibc.cpu.x86_rep_movsb_threshold=0x10000",
    "cached": "glibc.cpu.x86_non_temporal_threshold=0x7fffffffffff"
              ":glibc.cpu.x86_rep_movsb_threshold=0x7fffffffffff",
}

CHILD = r"""
import sys, time
import numpy as np
big, small, repeats = (int(a) for a in sys.argv[1:4])
src = np.ones(big << 20, np.uint8); dst = np.zeros(big << 20, np.uint8)
np.copyto(dst, src)
best = min((lambda t: (np.copyto(dst, src), time.perf_counter() - t)[1])(time.perf_counter())
           for _ in range(repeats))
s, d = src[: small << 20], dst[: small << 20]
reads = []
for _ in range(repeats):
    np.copyto(d, s)
    t = time.perf_counter(); np.bitwise_xor.reduce(d.view(np.uint64))
    reads.append(time.perf_counter() - t)
print((big << 20) / best / 1e9, (small << 20) / float(np.median(reads)) / 1e9)
"""


def measure(mode: str, big: int, small: int, repeats: int) -> tuple[float, float]:
    """Copy GB/s of ``big`` MiB and read-after-copy GB/s of ``small`` MiB with ``mode`` stores."""
    env = dict(os.environ, GLIBC_TUNABLES=MODES[mode])
    out = subprocess.run([sys.executable, "-c", CHILD, str(big), str(small), str(repeats)],
                         env=env, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=256, help="MiB copied for bandwidth")
    parser.add_argument("--small", type=int, default=8, help="MiB copied, then read back")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if platform.machine() not in ("x86_64", "AMD64") or platform.libc_ver()[0] != "glibc":
        sys.exit("nt_copy.py needs x86-64 with glibc (its memcpy tunables choose the stores)")
    figures = {mode: dict(zip(("copy_gbps", "read_after_gbps"),
                              measure(mode, args.big, args.small, args.repeats), strict=True))
               for mode in MODES}
    figures["nt_over_cached_copy"] = figures["nt"]["copy_gbps"] / figures["cached"]["copy_gbps"]
    figures["read_after_cached_over_nt"] = (figures["cached"]["read_after_gbps"]
                                            / figures["nt"]["read_after_gbps"])
    figures.update(host=platform.node(), big_mib=args.big, small_mib=args.small)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for mode in MODES:
        f = figures[mode]
        print(f"{mode:>6} stores: copy {args.big} MiB at {f['copy_gbps']:.2f} GB/s; reading the "
              f"{args.small} MiB just copied: {f['read_after_gbps']:.2f} GB/s")
    print(f"non-temporal / cached copy bandwidth: {figures['nt_over_cached_copy']:.2f}x "
          f"(profiles assume memory.nt_factor = 1.5)")
    print(f"read right after the copy, cached / non-temporal: "
          f"{figures['read_after_cached_over_nt']:.2f}x (the cached copy left it in the cache)")


if __name__ == "__main__":
    main()
