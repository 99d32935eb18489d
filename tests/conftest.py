"""Shared fixtures. Prefect gets a private home before it is imported anywhere, and one real
test server (prefect_test_harness) serves the whole session, started only when a test asks."""
from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="camtune-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# DVC tests make throwaway git repos
for var, val in (("GIT_AUTHOR_NAME", "camtune-tests"), ("GIT_AUTHOR_EMAIL", "tests@camtune.invalid"),
                 ("GIT_COMMITTER_NAME", "camtune-tests"), ("GIT_COMMITTER_EMAIL", "tests@camtune.invalid")):
    os.environ.setdefault(var, val)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect API server on SQLite for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
