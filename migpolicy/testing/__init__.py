"""Test helpers for plugin authors: conformance suites any plugin runs against itself.

Importing this package needs pytest and hypothesis (the ``test`` extra). See
:mod:`migpolicy.testing.copy_engine` for the copy-engine suite.
"""

from __future__ import annotations

from migpolicy.testing.copy_engine import CopyEngineConformance, EngineUnderTest

__all__ = ["CopyEngineConformance", "EngineUnderTest"]
