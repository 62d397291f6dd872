"""The placement conformance suite on every built-in replay policy, and what each one models."""

from __future__ import annotations

import pytest

from migpolicy.testing import PlacementPolicyConformance


class TestNumab(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_numab"


class TestHist(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_hist"


class TestDamos(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_damos"


class TestWatermark(PlacementPolicyConformance):
    @pytest.fixture
    def placement_plugin(self):
        return "migpolicy.plugins.placement_watermark"
