"""Shared fixtures. Prefect gets a private home before it is imported anywhere, and one real
test server (prefect_test_harness) serves the whole session, started only when a test asks."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="camtune-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# DVC tests make throwaway git repos
for var, val in (("GIT_AUTHOR_NAME", "camtune-tests"), ("GIT_AUTHOR_EMAIL", "tests@camtune.invalid"),
                 ("GIT_COMMITTER_NAME", "camtune-tests"), ("GIT_COMMITTER_EMAIL", "tests@camtune.invalid")):
    os.environ.setdefault(var, val)

import pytest  # noqa: E402

# registry/publish: moto S3 server on loopback, tiny TFLite (tests/support/s3.py). `tests` is a
# package, so pytest puts the repository root on sys.path and `tests.support` imports everywhere.
from tests.support.s3 import s3_bucket, s3_server, tiny_onnx, tiny_tflite  # noqa: E402,F401
# export: the session's one real export_flow run (tests/support/export.py)
from tests.support.export import export_run  # noqa: E402,F401


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect API server on SQLite for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        from prefect.settings import PREFECT_API_URL

        # step subprocesses (dvc repro -> camtune <step>) report to this server too, instead of
        # each starting a temporary server of its own (tens of seconds on 2 cores)
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)


# ---------------------------------------------------------------- synthetic sample data

SAMPLE_DATASET_OVERRIDES = {
    "sample_data.global_images": 48, "sample_data.user_images": 24, "sample_data.user_images_in_pool": 8,
}


@pytest.fixture(scope="session")
def sample_datasets(tmp_path_factory):
    """A tiny synthetic pair from camtune.steps.sample_data (every label present, 640x360 JPEGs), generated
    once per session: `.global_pool` and `.user` dataset folders (Paths) and the `.params` used
    (repo params.yaml + SAMPLE_DATASET_OVERRIDES; sample_data.* and data.* point at the two folders).

    SHARED AND READ-ONLY: a test that modifies a dataset must copy it first
    (`shutil.copytree(sample_datasets.user, tmp_path / "user")`)."""
    from collections import namedtuple

    from camtune.core import config
    from camtune.steps.sample_data import generate

    root = tmp_path_factory.mktemp("sample_datasets")
    overrides = {**SAMPLE_DATASET_OVERRIDES, "sample_data.global_pool": str(root / "global"),
                 "sample_data.users_dir": str(root / "users"), "data.global_pool": str(root / "global"),
                 "data.user_dataset": str(root / "users" / "u_demo")}
    params = config.load(config.ROOT / "params.yaml", overrides)
    generate(params)
    SampleDatasets = namedtuple("SampleDatasets", "global_pool user params")
    return SampleDatasets(root / "global", root / "users" / "u_demo", params)


@pytest.fixture
def umask_022():
    """The common default umask for the test, restored after (file modes depend on it)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def pytest_sessionfinish(session, exitstatus):
    """A step run without the prefect_server fixture (no PREFECT_API_URL) starts camtune's shared
    local Prefect server in this session's PREFECT_HOME: it ends with the session."""
    from camtune.runners import prefect_server

    prefect_server.stop(Path(os.environ["PREFECT_HOME"]))


@pytest.fixture(params=["local", "s3"])
def rp(request, tmp_path):
    """A registry in both kinds: a local folder and a bucket on the session's moto S3 server."""
    from camtune.core.config import RegistryParams, S3Params

    if request.param == "local":
        return RegistryParams(kind="local", root=str(tmp_path / "registry"))
    return RegistryParams(kind="s3", s3=S3Params(bucket=request.getfixturevalue("s3_bucket"), prefix="r",
                                                 endpoint_url=request.getfixturevalue("s3_server")))
