"""The hostile-input corpus of the importers and exporters: every case answered right
(benchmarks/hostile_io.py runs the same cases for time and memory)."""
from __future__ import annotations

import pytest

from .corpus import CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name, tmp_path):
    CASES[name](tmp_path)
