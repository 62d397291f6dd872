"""Autotuning: the Optuna study, its search space and the learned cost model's screening.

The search space is assembled from the ``migpolicy_search_space`` hook; the
study itself arrives with trace replay.
"""
