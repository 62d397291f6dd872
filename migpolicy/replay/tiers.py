"""The tiered-memory model of a replay: a fast and a slow node, their sizes and latencies.

The two nodes come from the hardware profile: the fast tier is the node with
the lowest access latency (ties: the lowest id), the slow tier the next one.
Latencies are the profile's ``load_latency_ns`` and ``store_latency_ns``;
the slow node's capacity is the profile's. The fast tier may be sized smaller
than its node (``--fast 25%`` of the trace's footprint, or ``--fast 64M``),
so that a small trace still has memory pressure; it may never be larger than
the node the profile describes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from migpolicy.errors import InputError
from migpolicy.hardware.profile import Profile
from migpolicy.placement import Placement
from migpolicy.units import format_size, parse_size

__all__ = ["INITIAL_PLACEMENTS", "Tiers", "parse_fast"]

#: How pages are placed before the first epoch.
INITIAL_PLACEMENTS = ("first-touch", "slow", "interleave")

_PCT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_fast(text: str | int | float, footprint: int) -> int:
    """``25%`` of ``footprint`` (over 100% leaves room), a size (``64M``) or a fraction → bytes."""
    if isinstance(text, float) and text > 0:
        return int(footprint * text)
    match = _PCT.match(str(text))
    if match:
        pct = float(match.group(1))
        if pct <= 0:
            raise InputError(f"--fast {text}: expected a positive percentage")
        return int(footprint * pct / 100)
    try:
        return parse_size(text, "--fast")
    except InputError:
        raise InputError(f"--fast {text!r}: expected a size such as 64M or a percentage of "
                         "the trace's footprint such as 25%") from None


@dataclass(frozen=True)
class Tiers:
    """The fast and slow node of a replay with their capacities (bytes) and latencies (s)."""

    fast: int
    slow: int
    fast_bytes: int
    slow_bytes: int
    load_s: np.ndarray  # indexed by node id
    store_s: np.ndarray
    page_bytes: int

    @classmethod
    def of(cls, hw: Profile, fast_bytes: int | None, page_bytes: int) -> Tiers:
        """The two fastest nodes of ``hw``; the fast one limited to ``fast_bytes``."""
        if len(hw.nodes) < 2:
            raise InputError(f"profile {hw.name} has one node; a tiered-memory replay needs "
                             "a fast and a slow node (try --hw dram-cxl)")
        ranked = sorted(hw.nodes.values(),
                        key=lambda n: (n["load_latency_ns"] + n["store_latency_ns"], n.id))
        fast, slow = ranked[0], ranked[1]
        node_bytes = int(fast["capacity"])
        if fast_bytes is None:
            fast_bytes = node_bytes
        if fast_bytes > node_bytes:
            raise InputError(f"--fast {format_size(fast_bytes)} is larger than node {fast.id} "
                             f"({fast.name}) of profile {hw.name}, which holds "
                             f"{format_size(node_bytes)}")
        top = max(hw.nodes) + 1
        load, store = np.zeros(top), np.zeros(top)
        for node in (fast, slow):
            load[node.id] = node["load_latency_ns"] * 1e-9
            store[node.id] = node["store_latency_ns"] * 1e-9
        return cls(fast=fast.id, slow=slow.id, fast_bytes=fast_bytes,
                   slow_bytes=int(slow["capacity"]), load_s=load, store_s=store,
                   page_bytes=page_bytes)

    @property
    def fast_pages(self) -> int:
        """Pages the fast tier holds."""
        return self.fast_bytes // self.page_bytes

    def placement(self, pages: int, first_touch: np.ndarray, initial: str) -> Placement:
        """Every page on a node before the first epoch.

        ``first_touch[i]`` is the replay id of the ``i``-th page the trace
        touched. ``first-touch`` puts the first pages touched on the fast tier
        until it is full, ``interleave`` alternates fast and slow in touch order
        until the fast tier is full, ``slow`` puts everything on the slow tier.
        """
        if initial not in INITIAL_PLACEMENTS:
            raise InputError(f"initial placement {initial!r}: expected one of "
                             f"{', '.join(INITIAL_PLACEMENTS)}")
        if (pages - min(pages, self.fast_pages)) * self.page_bytes > self.slow_bytes:
            raise InputError(f"the trace's {format_size(pages * self.page_bytes)} footprint "
                             f"does not fit the two tiers ({format_size(self.fast_bytes)} + "
                             f"{format_size(self.slow_bytes)})")
        node_of = np.full(pages, self.slow, dtype=np.int16)
        if initial == "first-touch":
            node_of[first_touch[: self.fast_pages]] = self.fast
        elif initial == "interleave":
            node_of[first_touch[0::2][: self.fast_pages]] = self.fast
        return Placement(node_of=node_of,
                         page_bytes=np.full(pages, self.page_bytes, dtype=np.int64),
                         capacity={self.fast: self.fast_bytes,
                                   self.slow: max(self.slow_bytes, 0)})

    def latency_of(self, node_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per page: load and store latency (s) of the node it lives on."""
        return self.load_s[node_of], self.store_s[node_of]
