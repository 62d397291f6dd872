"""Matching a candidate to a finished trial it has replayed identically so far.

Many candidates of a study differ from a finished one only in values that make
no difference on the traces: a batch limit above the most folios an epoch ever
migrates, a promotion threshold between the same two access counts, a worker
count on an engine whose copies are not the bottleneck. Their replays are the
same to the last bit, and a replay that ties the finished trial cannot improve
on it; yet the pruner lets them run to the end, since they keep pace with the
leader. On the tuning-quality benchmark (6 traces x profiles, 5 seeds) such
exact ties were 223 of the 313 full replays that did not improve the best.

:class:`TwinWatch` follows a candidate's replay from checkpoint to checkpoint
(the figures so far, application time and migration CPU time, at the
``--prefix-steps`` points of every trace). Once they have equalled a finished,
fully replayed trial's at every checkpoint through ``MATCH_FRACTION`` of the
evaluation (5 of 8), the candidate takes that trial's values without the rest
of the replay: outcome ``matched``, ``same_as`` naming the trial.

A tie is evidence, not proof: a value that made no difference so far may make
one later. Why 5/8: on the same benchmark, no candidate that went on to improve
its run's best had tied a finished trial beyond 3 of its 8 checkpoints; in runs
of 90 trials (30 runs, every matched candidate replayed to the end afterwards),
matching after 4 of 8 checkpoints presumed wrongly for 52 of 499 candidates,
after 5 for 26 of 478 (8 of them would have been better than their twin, by at
most 0.9%), after 6 for 21 of 469. Most that diverge after 4 do so at the 5th.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optuna.trial import FrozenTrial

__all__ = ["CHECKPOINTS_ATTR", "MATCH_FRACTION", "Matched", "TwinWatch", "match_after"]

#: User attribute of a fully replayed trial: its figures [app_time_s, migration_cpu_s] at every
#: checkpoint, in order (the last one is the evaluation's total).
CHECKPOINTS_ATTR = "checkpoints"
#: Share of the checkpoints a candidate must tie before it is matched (5 of 8).
MATCH_FRACTION = 0.625


def match_after(steps: int) -> int | None:
    """How many of ``steps`` checkpoints must tie before a match; ``None``: no saving is
    possible (the tie would be known only at the evaluation's end)."""
    after = math.ceil(steps * MATCH_FRACTION)
    return after if 0 < after < steps else None


class Matched(Exception):
    """Raised from a replay's checkpoint: it tied ``twin`` long enough, after ``events``."""

    def __init__(self, twin: FrozenTrial, events: float) -> None:
        super().__init__(f"replayed as trial {twin.number} so far")
        self.twin, self.events = twin, events


class TwinWatch:
    """The finished trials a running replay has equalled at every checkpoint so far.

    ``finished`` are candidates for a twin: only those replayed in full
    (``outcome`` ``full``) with a list of ``steps`` recorded checkpoints
    count, so a twin's values were always measured, never themselves
    presumed (and a study written by other tools cannot make one up).
    """

    def __init__(self, finished: Sequence[FrozenTrial], steps: int) -> None:
        self.after = match_after(steps)
        self.seen: list[list[float]] = []
        self._twins = ({t.number: t for t in finished
                        if t.user_attrs.get("outcome") == "full"
                        and isinstance(points := t.user_attrs.get(CHECKPOINTS_ATTR), list)
                        and len(points) == steps}
                       if self.after is not None else {})

    def add(self, app_time_s: float, migration_cpu_s: float) -> FrozenTrial | None:
        """Record the next checkpoint's figures; the twin once the tie is long enough.

        Figures compare exactly: a replay is deterministic, and a difference in
        the last bit already means the policies decided differently.
        """
        point = [app_time_s, migration_cpu_s]
        step = len(self.seen)
        self.seen.append(point)
        if self._twins:
            self._twins = {n: t for n, t in self._twins.items()
                           if t.user_attrs[CHECKPOINTS_ATTR][step] == point}
        if self._twins and len(self.seen) >= self.after:
            return self._twins[min(self._twins)]
        return None
