"""migpolicy: model, price and tune Linux page-migration policy.

The stage pipeline (isolate, batch, copy, remap, account) is a pluggy hook
protocol (``migpolicy.hookspecs``); built-in and third-party plugins implement
it, and a hardware profile with per-parameter provenance prices each stage.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
