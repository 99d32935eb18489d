"""The documented DVC S3 remote setup, run against the loopback S3 endpoint (moto server):
`dvc remote add`, `dvc remote modify ... endpointurl`, `dvc add`, `dvc push`, then `dvc pull`
into an empty cache gives the same bytes back."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.s3 import s3_client


def _run(cwd: Path, *cmd: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_dvc_push_and_pull_through_s3_remote(s3_server, s3_bucket, tmp_path):
    dvc = str(Path(sys.executable).with_name("dvc"))
    repo = tmp_path / "repo"
    (repo / "data/sample/user/images").mkdir(parents=True)
    (repo / "data/sample/user/annotations.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (repo / "data/sample/user/images/a.jpg").write_bytes(b"\xff\xd8not-really-a-jpeg")
    (repo / "artifacts/export").mkdir(parents=True)
    (repo / "artifacts/export/model.tflite").write_bytes(b"TFL3" + bytes(range(256)))

    _run(repo, "git", "init", "-q")
    _run(repo, dvc, "init", "-q")
    _run(repo, dvc, "remote", "add", "-d", "s3remote", f"s3://{s3_bucket}/dvcstore")
    _run(repo, dvc, "remote", "modify", "s3remote", "endpointurl", s3_server)
    _run(repo, dvc, "add", "data/sample/user", "artifacts/export")
    _run(repo, dvc, "push")

    keys = [o["Key"] for o in s3_client(s3_server).list_objects_v2(Bucket=s3_bucket, Prefix="dvcstore/")
            .get("Contents", [])]
    # 3 files + the directory manifests (.dir) of the two folders, content-addressed by md5
    assert len(keys) == 5 and all(k.startswith("dvcstore/files/md5/") for k in keys), keys
    assert sum(k.endswith(".dir") for k in keys) == 2

    # what the remote holds is enough: drop the cache and the data, pull them back
    shutil.rmtree(repo / ".dvc/cache")
    shutil.rmtree(repo / "data/sample/user")
    _run(repo, dvc, "pull")
    assert (repo / "data/sample/user/images/a.jpg").read_bytes() == b"\xff\xd8not-really-a-jpeg"
