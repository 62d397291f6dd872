"""The built-in copy engines (cpu, mt, dma, gpu) pass the copy-engine conformance suite."""

from __future__ import annotations

import pytest

from migpolicy.testing import CopyEngineConformance


class TestCpuEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_cpu"


class TestMtEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_mt"


class TestDmaEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_dma"


class TestGpuEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_gpu"


class TestDsaEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_dsa"


class TestSdxiEngine(CopyEngineConformance):
    @pytest.fixture
    def copy_plugin(self):
        return "migpolicy.plugins.engine_sdxi"
