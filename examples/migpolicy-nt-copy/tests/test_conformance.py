"""The nt engine passes migpolicy's copy-engine conformance suite."""

from __future__ import annotations

import pytest

from migpolicy.testing import CopyEngineConformance


class TestNtEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy_nt_copy"
