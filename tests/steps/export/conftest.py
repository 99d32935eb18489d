"""The export tests read the model of the session's one real export (tests/support/export.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def exported_model(export_run):
    """artifacts/export/model.tflite at 320x320, as the export step wrote it."""
    return export_run.out / "model.tflite"
