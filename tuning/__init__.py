"""Autotuning (``migpolicy tune``): Optuna over the declared policy space, priced by replay.

* :mod:`~migpolicy.tuning.space`: the search space, assembled from the
  ``migpolicy_search_space`` hook, with its conditions and fixed values;
* :mod:`~migpolicy.tuning.study`: the :class:`~migpolicy.tuning.study.Tuner`
  that replays a candidate on the traces, and the study it runs in;
* :mod:`~migpolicy.tuning.sampler`, :mod:`~migpolicy.tuning.pruning`,
  :mod:`~migpolicy.tuning.screening`, :mod:`~migpolicy.tuning.matching`: how
  candidates are proposed, and the three ways a candidate is settled with
  less than a full replay;
* :mod:`~migpolicy.tuning.storage`, :mod:`~migpolicy.tuning.workers`,
  :mod:`~migpolicy.tuning.interrupts`: one study shared by processes and
  machines, safe to kill or interrupt;
* :mod:`~migpolicy.tuning.report`, :mod:`~migpolicy.tuning.report_render`:
  the report page.
"""
