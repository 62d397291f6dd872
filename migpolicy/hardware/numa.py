"""This machine's NUMA nodes and CPU topology (from sysfs), and ``move_pages(2)`` through ctypes.

Calibration needs to know what it measures on: which nodes exist, which CPUs
and how much memory each holds, how many last-level-cache domains (CCDs) and
hardware threads per core the CPUs have. All of it is read from
``/sys/devices/system``; a machine (or container) without those files is
treated as one node holding every CPU. :func:`move_pages` moves (or, with no
target, locates) pages of this process between nodes with the system call
itself, so no libnuma is needed; it is only useful with two or more nodes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CPU_ROOT",
    "NODE_ROOT",
    "NodeInfo",
    "detect_nodes",
    "llc_bytes",
    "move_pages",
    "page_addresses",
    "parse_cpulist",
    "place",
]

NODE_ROOT = Path("/sys/devices/system/node")
CPU_ROOT = Path("/sys/devices/system/cpu")

#: ``move_pages`` system call numbers by machine (glibc has no wrapper; libnuma does).
_SYS_MOVE_PAGES = {"x86_64": 279, "aarch64": 239, "ppc64le": 301, "s390x": 310}
#: Move only the pages this process owns exclusively.
MPOL_MF_MOVE = 1 << 1


@dataclass(frozen=True)
class NodeInfo:
    """One NUMA node as sysfs shows it: CPUs, memory, and the CPUs' topology."""

    id: int
    cpus: tuple[int, ...]
    memory_bytes: int
    ccds: int
    cores_per_ccd: int
    smt: int


def parse_cpulist(text: str) -> list[int]:
    """CPU numbers of a sysfs list such as ``0-3,8,10-11`` (empty text: none)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except OSError:
        return None


def _llc_index(cpu_root: Path, cpu: int) -> Path | None:
    """The cache directory of ``cpu``'s last (highest) level, if sysfs has one."""
    best, best_level = None, -1
    for index in (cpu_root / f"cpu{cpu}" / "cache").glob("index*"):
        level = _read(index / "level")
        if level is not None and int(level) > best_level:
            best, best_level = index, int(level)
    return best


def _topology(cpus: list[int], cpu_root: Path) -> tuple[int, int, int]:
    """(LLC domains, cores per domain, hardware threads per core) of ``cpus``."""
    if not cpus:
        return 0, 1, 1
    domains, cores = set(), set()
    for cpu in cpus:
        index = _llc_index(cpu_root, cpu)
        shared = _read(index / "shared_cpu_list") if index is not None else None
        domains.add(tuple(parse_cpulist(shared)) if shared else ())
        siblings = _read(cpu_root / f"cpu{cpu}" / "topology" / "thread_siblings_list")
        cores.add(tuple(parse_cpulist(siblings)) if siblings else (cpu,))
    smt = max(1, round(len(cpus) / len(cores)))
    ccds = max(1, len(domains))
    return ccds, max(1, round(len(cores) / ccds)), smt


def _node_memory(node_dir: Path) -> int:
    text = _read(node_dir / "meminfo") or ""
    match = re.search(r"MemTotal:\s+(\d+)\s*kB", text)
    return int(match.group(1)) * 1024 if match else 0


def _machine_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def detect_nodes(node_root: Path = NODE_ROOT, cpu_root: Path = CPU_ROOT) -> list[NodeInfo]:
    """Every online NUMA node with its CPUs, memory and topology, by node id.

    Without ``node_root`` (no NUMA support in the kernel, or a container that
    hides it) the machine is one node 0 holding every CPU this process may use.
    """
    node_dirs = sorted((p for p in node_root.glob("node[0-9]*") if p.is_dir()),
                       key=lambda p: int(p.name[4:]))
    if not node_dirs:
        cpus = sorted(os.sched_getaffinity(0))
        return [NodeInfo(0, tuple(cpus), _machine_memory(), *_topology(cpus, cpu_root))]
    out = []
    for node_dir in node_dirs:
        cpus = parse_cpulist(_read(node_dir / "cpulist") or "")
        out.append(NodeInfo(int(node_dir.name[4:]), tuple(cpus), _node_memory(node_dir),
                            *_topology(cpus, cpu_root)))
    return out


def llc_bytes(cpu_root: Path = CPU_ROOT, cpu: int = 0) -> int:
    """Size of ``cpu``'s last-level cache in bytes (32 MiB when sysfs does not say)."""
    index = _llc_index(cpu_root, cpu)
    text = (_read(index / "size") if index is not None else None) or ""
    match = re.fullmatch(r"\s*(\d+)([KMG]?)\s*", text)
    if not match:
        return 32 << 20
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


def page_addresses(buffer: np.ndarray, page_size: int | None = None) -> np.ndarray:
    """Addresses of the whole pages inside ``buffer`` (a contiguous array), as ``uint64``."""
    page = page_size or os.sysconf("SC_PAGE_SIZE")
    start = buffer.ctypes.data
    first = -(-start // page) * page
    end = start + buffer.nbytes
    return np.arange(first, end - page + 1, page, dtype=np.uint64)


def _syscall_number() -> int:
    machine = platform.machine()
    if machine not in _SYS_MOVE_PAGES:
        raise OSError(errno.ENOSYS, f"move_pages: no system call number known for {machine}")
    return _SYS_MOVE_PAGES[machine]


def move_pages(addresses: np.ndarray, node: int | None) -> np.ndarray:
    """Move this process's pages at ``addresses`` to ``node`` (``None``: only report where).

    Returns the per-page status: the node each page is on after the call, or
    a negative errno for a page that could not be moved. Raises
    :class:`OSError` when the call itself fails (no NUMA support, no such node).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    count = len(addresses)
    pages = np.ascontiguousarray(addresses, dtype=np.uint64)
    status = np.zeros(count, dtype=np.int32)
    targets = None if node is None else np.full(count, node, dtype=np.int32)
    result = libc.syscall(
        ctypes.c_long(_syscall_number()), ctypes.c_int(0), ctypes.c_ulong(count),
        ctypes.c_void_p(pages.ctypes.data),
        ctypes.c_void_p(None if targets is None else targets.ctypes.data),
        ctypes.c_void_p(status.ctypes.data), ctypes.c_int(MPOL_MF_MOVE if node is not None else 0),
    )
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"move_pages: {os.strerror(code)}")
    return status


def place(buffer: np.ndarray, node: int) -> float:
    """Move every whole page of ``buffer`` (already touched) to ``node``; return the seconds."""
    addresses = page_addresses(buffer)
    begin = time.perf_counter()
    status = move_pages(addresses, node)
    elapsed = time.perf_counter() - begin
    failed = status[status != node]
    if len(failed):
        code = -int(failed[0]) if failed[0] < 0 else errno.EIO
        raise OSError(code, f"move_pages: {len(failed)} of {len(status)} pages did not move "
                            f"to node {node} ({os.strerror(code)})")
    return elapsed
