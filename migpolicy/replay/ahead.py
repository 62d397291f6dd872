"""Counting the next epochs in a second thread while the policies act on this one.

A replay's thread spends about 40% of its time counting each epoch's events
(sorting one key per event) and 60% in the policies, the bounds and the
pricing. The counting's loops are compiled without the GIL, so on a machine
with a spare core :func:`epochs_ahead` runs the :class:`EpochStream` in a
thread of its own, a few epochs ahead, and the replay's thread only acts.

Every figure is the same as in one thread: the stream's updates of which
tenant last touched each page travel through the same queue as the epochs
and are applied in the order one thread would have applied them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator

import numpy as np

from migpolicy.placement import Epoch
from migpolicy.replay.epochs import EpochStream

__all__ = ["AHEAD_EVENTS", "epochs_ahead", "worth_a_thread"]

#: Traces shorter than this are counted in the replay's thread: a tuner replays small traces
#: thousands of times, and a thread's start and hand-offs would cost more than they save.
AHEAD_EVENTS = 4_000_000
#: Epochs counted ahead at most: the memory in flight stays a few epochs' arrays.
DEPTH = 4


def worth_a_thread(events: int | None) -> bool:
    """Whether a trace of ``events`` events (``None``: unknown) is counted in a thread: it
    is long and this process may run on more than one CPU."""
    return (events is None or events >= AHEAD_EVENTS) and len(os.sched_getaffinity(0)) > 1


def epochs_ahead(stream: EpochStream) -> Iterator[Epoch]:
    """The epochs of ``stream``, counted in a thread up to :data:`DEPTH` epochs ahead.

    The stream's ``tenant_of`` is written here, in the caller's thread, in
    stream order. An error in the stream is raised here; when the caller
    stops early (an error of its own, a pruned trial, Ctrl-C) the thread is
    stopped and joined before this generator ends.
    """
    tenant_of = stream.tenant_of
    items: queue.Queue = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()

    def put(item: tuple) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def note_tenants(pages: np.ndarray, tenants: np.ndarray) -> None:
        put(("tenants", pages, tenants))

    def count() -> None:
        try:
            for epoch in stream:
                put(("epoch", epoch))
            put(("end", None))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread, raised there
            try:
                put(("error", exc))
            except _Stopped:
                pass

    if tenant_of is not None:
        stream.note_tenants = note_tenants
    thread = threading.Thread(target=count, name="migpolicy-epochs", daemon=True)
    thread.start()
    try:
        while True:
            kind, *payload = items.get()
            if kind == "epoch":
                yield payload[0]
            elif kind == "tenants":
                tenant_of[payload[0]] = payload[1]
            elif kind == "error":
                raise payload[0]
            else:
                return
    finally:
        stop.set()
        thread.join()


class _Stopped(Exception):
    """The caller stopped reading: the counting thread ends."""
