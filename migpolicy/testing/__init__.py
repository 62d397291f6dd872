"""Test helpers for plugin authors: conformance suites any plugin runs against itself.

Importing this package needs pytest and hypothesis (the ``test`` extra). See
:mod:`migpolicy.testing.copy_engine` for the copy-engine suite and
:mod:`migpolicy.testing.placement_policy` for the placement-policy suite.
"""

from __future__ import annotations

from migpolicy.testing.copy_engine import CopyEngineConformance, EngineUnderTest
from migpolicy.testing.placement_policy import PlacementPolicyConformance, Workload, drive

__all__ = [
    "CopyEngineConformance",
    "EngineUnderTest",
    "PlacementPolicyConformance",
    "Workload",
    "drive",
]
