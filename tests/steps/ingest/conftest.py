"""Shared helpers for the ingest tests: params, a small user dataset with one verified image."""
from __future__ import annotations

import pytest

from camtune.core import config


@pytest.fixture
def params(tmp_path):
    return config.load(config.ROOT / "params.yaml", {"data.user_dataset": str(tmp_path / "user"),
                                                      "ingest.out_dir": str(tmp_path / "ingest")})

