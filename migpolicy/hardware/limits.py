"""Physical limits of a profile: what a migration on that machine can and cannot be.

A model answers any question it is asked; these checks refuse the questions
the machine could not pose, each with one sentence naming the option:

* a folio is a power of two from the base page to the PMD size (mTHP and THP),
  or the PUD size where the profile has PUD hugetlb pages (``pud_size``);
* the bytes moved must fit in the source and in the destination node.

:func:`move_notes` adds what the answer extrapolates beyond its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migpolicy.errors import InputError
from migpolicy.hardware.profile import Profile
from migpolicy.units import format_size

__all__ = ["check_folio_size", "check_move", "folio_sizes", "move_notes"]


def folio_sizes(hw: Profile) -> list[int]:
    """Every folio size the profile's kernel can have: base page .. PMD, and PUD if any."""
    sizes = []
    size = hw.base_page
    while size <= hw.pmd_size:
        sizes.append(size)
        size *= 2
    if hw.pud_size:
        sizes.append(hw.pud_size)
    return sizes


def check_folio_size(hw: Profile, size: int, option: str = "--folio") -> None:
    """Raise :class:`InputError` unless ``size`` is a folio size of ``hw``."""
    if size in folio_sizes(hw):
        return
    pud = f", or {format_size(hw.pud_size)} (PUD hugetlb)" if hw.pud_size else ""
    raise InputError(
        f"{option} {format_size(size)}: profile {hw.name} has folios of a power of two from "
        f"its {format_size(hw.base_page)} base page to its {format_size(hw.pmd_size)} PMD "
        f"size{pud}"
    )


def check_move(hw: Profile, *, nbytes: int, folio: int, src: int, dst: int) -> None:
    """Raise :class:`InputError` for a migration ``hw`` could not perform."""
    check_folio_size(hw, folio)
    for option, node_id in (("--src", src), ("--dst", dst)):
        node = hw.node(node_id, option)
        capacity = int(node["capacity"])
        if nbytes > capacity:
            raise InputError(
                f"--bytes {format_size(nbytes)}: more than node {node_id} ({node.name}, "
                f"{option}) holds on profile {hw.name} ({format_size(capacity)})"
            )


def move_notes(hw: Profile, params: Mapping[str, Any]) -> list[str]:
    """Sentences on what a priced move extrapolates beyond the profile's evidence."""
    notes = []
    if params.get("engine") == "dma" and hw.has("engines.dma"):
        pairs = int(hw.p("engines.dma.channels_per_engine"))
        workers = int(params.get("dma.channels", 1))
        if pairs > 1 and workers > 1 and workers % pairs:
            notes.append(
                f"dma with {workers} channels: {pairs} channels share an engine on profile "
                f"{hw.name}, so a partly used engine is extrapolated from that sharing "
                "assumption; no table measures an odd channel count"
            )
    return notes
