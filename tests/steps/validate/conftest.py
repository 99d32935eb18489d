"""Fixtures for the validation tests; the dataset builders live in builders.py."""
from __future__ import annotations

import pytest

from .builders import make_dataset, make_params


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    return root, coco


@pytest.fixture
def params_for(tmp_path):
    def make(root: Path, **overrides):
        return make_params(root, tmp_path / "registry", **overrides)
    return make
