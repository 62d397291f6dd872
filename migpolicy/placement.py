"""Placement policies: the contract of a stateful policy, and the placement it acts on.

A placement policy decides, epoch after epoch, which pages to promote to a
faster node and which to demote. Like an Optuna sampler it is an object
created once per replay (through a :class:`PlacementPolicyInfo` that a plugin
registers with ``migpolicy_placement_policies``) and called in a fixed order
every epoch:

1. :meth:`PlacementPolicy.observe` with the epoch's accesses;
2. :meth:`PlacementPolicy.propose` with the current placement, which returns
   page-level requests (:data:`~migpolicy.folios.REQUEST_DTYPE`);
3. :meth:`PlacementPolicy.learn`, once the requests of one or more epochs were
   priced, with which of them really moved.

Scan state, regions and histograms live on the policy object, never in a
module. :class:`Placement` is the replay's page → node map; it applies
requests and enforces the invariants every policy must keep (every page on
exactly one node, no node over its capacity).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from migpolicy.errors import PluginError
from migpolicy.folios import FAILED, REQUEST_DTYPE

if TYPE_CHECKING:
    from migpolicy.hardware.profile import Profile
    from migpolicy.params import Parameter

__all__ = [
    "Epoch",
    "Placement",
    "PlacementPolicy",
    "PlacementPolicyInfo",
    "PlacementView",
    "empty_requests",
]


def empty_requests() -> np.ndarray:
    """A request array with no rows (what a policy returns when it moves nothing)."""
    return np.zeros(0, dtype=REQUEST_DTYPE)


@dataclass(frozen=True)
class Epoch:
    """The accesses of one epoch, counted per page.

    ``pages`` are the dense page indices touched in the epoch (unique,
    ascending); ``accesses`` the access count of each (the sum of the trace
    events' weights), ``writes`` the part of it that wrote. ``start_ns`` and
    ``length_ns`` place the epoch in the trace's time.
    """

    index: int
    start_ns: int
    length_ns: int
    pages: np.ndarray
    accesses: np.ndarray
    writes: np.ndarray


@dataclass(frozen=True)
class PlacementView:
    """What a policy sees when it proposes: the placement, read-only, and the machine.

    ``node_of[page]`` is the node each page lives on; ``page_bytes[page]`` its
    size; ``capacity`` and ``used`` are bytes per node id (``free()`` gives the
    difference). ``fast`` and ``slow`` list node ids from fastest to slowest.
    """

    node_of: np.ndarray
    page_bytes: np.ndarray
    capacity: Mapping[int, int]
    used: Mapping[int, int]
    fast: tuple[int, ...]
    slow: tuple[int, ...]
    epoch_ns: int
    hw: Profile

    def free(self, node: int) -> int:
        """Bytes still free on ``node``."""
        return int(self.capacity[node] - self.used[node])


class PlacementPolicy:
    """Base class of a placement policy; subclass it and override :meth:`propose`.

    Created once per replay with the resolved parameters, the hardware
    profile and a seed (every random choice must come from ``seed``, so a
    replay is repeatable). The default methods observe nothing, propose
    nothing and learn nothing.
    """

    def __init__(self, params: Mapping[str, Any], hw: Profile, seed: int = 0) -> None:
        self.params = params
        self.hw = hw
        self.seed = seed

    def observe(self, epoch: Epoch) -> None:
        """Called once per epoch, first, with the pages the epoch accessed."""

    def propose(self, view: PlacementView) -> np.ndarray:
        """Called once per epoch after :meth:`observe`: return the requests to migrate.

        Returns a :data:`~migpolicy.folios.REQUEST_DTYPE` array, applied in
        order (put demotions before the promotions they make room for). A
        request must not name a page twice, move a page to the node it is on,
        or fill a node past its capacity at any point of the order.
        """
        return empty_requests()

    def learn(self, requests: np.ndarray, status: np.ndarray) -> None:
        """Called after requests were priced: ``status[i]`` says whether ``requests[i]`` moved.

        May come once per several epochs (pricing is windowed): the views of
        the epochs in between assumed every request moved; the ones that failed
        (:data:`~migpolicy.folios.FAILED`) were put back before this call.
        """


@dataclass(frozen=True)
class PlacementPolicyInfo:
    """A placement policy a plugin registers.

    ``name`` is what the ``placement`` parameter (or ``placement.demotion``
    for ``role="demotion"``) selects; ``factory(params, hw, seed)`` builds the
    policy; ``parameters`` lists the parameters it reads (declared through
    ``migpolicy_parameters`` too, so ``--param`` validates them);
    ``rate_limit`` names the parameter holding its promotion rate limit in
    MB/s, if it has one, so the conformance suite checks it.
    """

    name: str
    summary: str
    factory: Callable[[Mapping[str, Any], Profile, int], PlacementPolicy]
    role: str = "promotion"
    parameters: Sequence[Parameter] = ()
    rate_limit: str = ""

    def __post_init__(self) -> None:
        if self.role not in ("promotion", "demotion"):
            raise ValueError(f"placement policy {self.name!r}: role must be promotion or "
                             f"demotion, got {self.role!r}")


@dataclass
class Placement:
    """The replay's page → node map with per-node capacity and use, in bytes.

    :meth:`apply` moves pages as requests say, refusing any request that would
    break an invariant, so a broken policy is caught at the request that
    broke it, never later.
    """

    node_of: np.ndarray
    page_bytes: np.ndarray
    capacity: dict[int, int]
    used: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = np.asarray(sorted(self.capacity), dtype=np.int64)
        if len(self.node_of) and not np.isin(self.node_of, nodes).all():
            raise ValueError("every page must start on a node with a capacity")
        sums = np.bincount(np.searchsorted(nodes, self.node_of), weights=self.page_bytes,
                           minlength=len(nodes))
        self.used = {int(n): int(s) for n, s in zip(nodes, sums, strict=True)}
        over = [n for n in self.used if self.used[n] > self.capacity[n]]
        if over:
            raise ValueError(f"node {over[0]} starts over its capacity")

    def view(self, fast: tuple[int, ...], slow: tuple[int, ...], epoch_ns: int,
             hw: Profile) -> PlacementView:
        """A read-only view for :meth:`PlacementPolicy.propose`."""
        node_of = self.node_of.view()
        node_of.flags.writeable = False
        page_bytes = self.page_bytes.view()
        page_bytes.flags.writeable = False
        return PlacementView(node_of=node_of, page_bytes=page_bytes,
                             capacity=dict(self.capacity), used=dict(self.used),
                             fast=fast, slow=slow, epoch_ns=epoch_ns, hw=hw)

    def check(self, requests: np.ndarray, who: str = "placement policy") -> None:
        """Raise :class:`PluginError` naming ``who`` if ``requests`` break an invariant.

        Checked: the dtype, page indices and nodes that exist, no page twice,
        no page to the node it is on, and no node over its capacity after any
        prefix of the requests.
        """
        if not isinstance(requests, np.ndarray) or requests.dtype != REQUEST_DTYPE:
            got = getattr(requests, "dtype", type(requests).__name__)
            raise PluginError(f"{who} must return a REQUEST_DTYPE array, got {got}")
        if len(requests) == 0:
            return
        from migpolicy.placement_kernels import requests_fit

        nodes = np.asarray(sorted(self.capacity), dtype=np.int64)
        if requests_fit(requests["page"], requests["dst"], self.node_of, self.page_bytes, nodes,
                        np.asarray([self.used[int(n)] for n in nodes], dtype=np.int64),
                        np.asarray([self.capacity[int(n)] for n in nodes], dtype=np.int64)):
            return
        # something is wrong: find the first broken invariant, and name it
        pages = requests["page"]
        if pages.min() < 0 or pages.max() >= len(self.node_of):
            raise PluginError(f"{who} requested page {int(pages.max())} of "
                              f"{len(self.node_of)} pages")
        dst = requests["dst"].astype(np.int64)
        unknown = nodes[np.minimum(np.searchsorted(nodes, dst), len(nodes) - 1)] != dst
        if unknown.any():
            raise PluginError(f"{who} requested node {int(dst[unknown][0])}, which has "
                              "no capacity in this replay")
        if len(np.unique(pages)) != len(pages):
            raise PluginError(f"{who} requested the same page twice in one epoch")
        src = self.node_of[pages].astype(np.int64)
        same = src == dst
        if same.any():
            raise PluginError(f"{who} requested page {int(pages[same][0])} to node "
                              f"{int(dst[same][0])}, where it already is")
        size = self.page_bytes[pages]
        for node in nodes:
            delta = np.where(dst == node, size, 0) - np.where(src == node, size, 0)
            peak = self.used[int(node)] + np.cumsum(delta).max()
            if peak > self.capacity[int(node)]:
                raise PluginError(f"{who} fills node {int(node)} to {int(peak)} bytes, past "
                                  f"its capacity of {self.capacity[int(node)]}")

    def apply(self, requests: np.ndarray, who: str = "placement policy") -> np.ndarray:
        """Check ``requests`` and move their pages; return each page's previous node."""
        self.check(requests, who)
        pages = requests["page"]
        previous = self.node_of[pages].copy()
        self._move(pages, previous, requests["dst"])
        return previous

    def revert(self, requests: np.ndarray, previous: np.ndarray,
               status: np.ndarray) -> np.ndarray:
        """Put back the pages of the requests that failed; return the final status.

        A request that failed may have been making room for a later one (a
        demotion before a promotion): when putting its page back overfills a
        node, the latest requests that moved into that node are undone too and
        marked :data:`FAILED`, as the kernel would have failed them for want of
        room. The returned status is what really happened.
        """
        status = np.asarray(status, dtype=np.uint8).copy()
        failed = status == FAILED
        if not failed.any():
            return status
        pages, dst = requests["page"], requests["dst"].astype(np.int64)
        self._move(pages[failed], dst[failed], previous[failed])
        for _ in range(len(requests)):
            over = [node for node in self.capacity if self.used[node] > self.capacity[node]]
            if not over:
                break
            node = over[0]
            moved_in = np.flatnonzero((dst == node) & (status != FAILED))[::-1]
            if len(moved_in) == 0:
                break
            excess = self.used[node] - self.capacity[node]
            sizes = self.page_bytes[pages[moved_in]]
            undo = moved_in[: int(np.searchsorted(np.cumsum(sizes), excess)) + 1]
            status[undo] = FAILED
            self._move(pages[undo], dst[undo], previous[undo])
        return status

    def _move(self, pages: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        size = self.page_bytes[pages]
        for node in self.capacity:
            self.used[node] += int(size[dst == node].sum() - size[src == node].sum())
        self.node_of[pages] = dst
