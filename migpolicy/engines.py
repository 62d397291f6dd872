"""Copy-engine descriptors that plugins register through ``migpolicy_copy_engines``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile

__all__ = ["CopyEngine", "Executor"]

#: Performs a real copy of ``nbytes`` in folios of ``folio_size`` with ``workers``
#: threads or channels and returns the measured seconds.
Executor = Callable[[int, int, int], float]


def _always() -> bool:
    return True


def _any_pair(hw: Profile, src: int, dst: int) -> bool:
    return True


@dataclass(frozen=True)
class CopyEngine:
    """A copy engine a plugin provides.

    ``max_workers(hw)`` bounds the worker count (threads, DMA channels, GPU
    streams) on a profile; ``workers_param`` names the parameter holding the
    worker count the engine uses (``--workers`` sets it; ``auto`` tries up to
    it), empty for a single-worker engine; ``serves(hw, src, dst)`` says
    whether it can move between two nodes of a profile (``auto`` offers it only
    there; default: any pair); ``available()`` says whether
    ``executor`` can really run on this machine; ``executor`` is ``None`` for an
    engine that can only be priced (``modelled_only`` then explains why).
    ``cache_resident(params)`` is the fraction of the copied bytes the copy
    leaves in the initiating CPU's cache, up to its size, evicting as much of
    what was there (1 for a copy with cached stores; 0 for non-temporal stores
    and offload engines, after which the destination's next accesses miss);
    ``None``: not known. Replay charges it.
    """

    name: str
    summary: str
    worker_unit: str
    max_workers: Callable[[Profile], int]
    available: Callable[[], bool] = _always
    executor: Executor | None = None
    modelled_only: str = ""
    workers_param: str = ""
    serves: Callable[[Profile, int, int], bool] = _any_pair
    cache_resident: Callable[[Mapping[str, Any]], float] | None = None

    def workers(self, params: Mapping[str, Any]) -> int:
        """The worker count the engine uses under ``params``."""
        return int(params[self.workers_param]) if self.workers_param else 1
