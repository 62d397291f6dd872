"""The hardware cost model: profiles with provenance, the analytic copy model,
fitting to published tables, calibration on this machine, validation and the
learned alternative.
"""
