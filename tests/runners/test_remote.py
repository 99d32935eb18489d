"""Shared state through the object store (camtune/runners/remote.py + orchestration.run_shared_stage), with
real DVC in temporary git repositories, one clone per "host" with its own DVC cache, and the moto
S3 endpoint on loopback. The Prefect lock is exercised by tests/runners/test_service_e2e.py; here the
lock is a plain one so the DVC/S3 logic is tested on its own."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.support.s3 import FaultProxy

from camtune.runners import orchestration, remote
from camtune.core.config import RemoteParams
from camtune.core.errors import StepFailed

# a stand-in "base": persisted like train_base, and every real run leaves a line in RUNS_LOG
DVC_YAML = """stages:
  train_base:
    cmd: python make.py
    deps:
      - make.py
      - data.txt
    outs:
      - out:
          persist: true
"""
MAKE = """import os, pathlib
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/model.bin").write_bytes(pathlib.Path("data.txt").read_bytes() * 1000)
with open(os.environ["RUNS_LOG"], "a") as fh:
    fh.write(os.getcwd() + "\\n")
"""


def _run(cwd, *cmd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def origin(tmp_path):
    repo = tmp_path / "origin"
    repo.mkdir()
    _run(repo, "git", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "make.py").write_text(MAKE)
    (repo / "data.txt").write_text("pool v1\n")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return repo


def _host(origin: Path, name: str, tmp_path: Path) -> Path:
    """A host: its own clone (no hardlinks into the origin), its own DVC cache and site cache."""
    clone = tmp_path / name / "checkout"
    clone.parent.mkdir()
    _run(tmp_path, "git", "clone", "-q", "--no-hardlinks", str(origin), str(clone))
    _run(clone, sys.executable, "-m", "dvc", "config", "--local", "core.site_cache_dir", str(tmp_path / name / "site"))
    return clone


@pytest.fixture
def rp(s3_server, s3_bucket):
    return RemoteParams(url=f"s3://{s3_bucket}/svc", endpoint_url=s3_server)


@pytest.fixture
def runs_log(tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    monkeypatch.setenv("RUNS_LOG", str(log))
    return log


def _lock():
    locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def enter(name):
        lk = locks.setdefault(name, threading.Lock())
        with lk:
            yield
    return enter


def test_shared_stage_is_built_once_and_restored_on_another_host(origin, tmp_path, rp, runs_log):
    a, b = _host(origin, "host_a", tmp_path), _host(origin, "host_b", tmp_path)
    for ws in (a, b):
        remote.configure_dvc(ws, rp)
    ra = orchestration.run_shared_stage(a, "train_base", rp, _lock(), by={"host": "a"})
    assert ra.returncode == 0 and ra.ran, ra.output
    key = remote.stage_key(a, "train_base")
    assert remote.SharedState(rp).shared_entry("train_base", key)["by"] == {"host": "a"}

    rb = orchestration.run_shared_stage(b, "train_base", rp, _lock())
    assert rb.returncode == 0 and not rb.ran, rb.output
    assert (b / "out/model.bin").read_bytes() == (a / "out/model.bin").read_bytes()
    assert runs_log.read_text().splitlines() == [str(a)]  # built once, on host a
    # nothing of host a's folder is in host b's: its own cache holds the pulled objects
    assert not (b / ".dvc/cache").resolve().is_relative_to(tmp_path / "host_a")
    assert any((b / ".dvc/cache").rglob("*"))

    # a new pool version is a new key: built again, once
    (a / "data.txt").write_text("pool v2\n")
    ra2 = orchestration.run_shared_stage(a, "train_base", rp, _lock())
    assert ra2.ran and len(runs_log.read_text().splitlines()) == 2
    assert remote.stage_key(a, "train_base") != key


def test_racing_hosts_build_the_shared_stage_once(origin, tmp_path, rp, runs_log):
    hosts = [_host(origin, f"host_{i}", tmp_path) for i in range(3)]
    for ws in hosts:
        remote.configure_dvc(ws, rp)
    lock = _lock()  # one lock service for all (Prefect's global concurrency limit in production)
    results = {}
    threads = [threading.Thread(target=lambda ws=ws: results.__setitem__(
        ws, orchestration.run_shared_stage(ws, "train_base", rp, lock))) for ws in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results.values())
    assert sum(r.ran for r in results.values()) == 1
    assert len(runs_log.read_text().splitlines()) == 1


def test_an_interrupted_push_is_not_taken_for_a_finished_stage(origin, tmp_path, rp, s3_server, runs_log, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # DVC's S3 client: fail at once instead of backing off
    a, b = _host(origin, "host_a", tmp_path), _host(origin, "host_b", tmp_path)
    with FaultProxy(s3_server, fail_first=10_000, methods=("PUT", "POST")) as proxy:  # every upload fails
        broken = RemoteParams(url=rp.url, endpoint_url=proxy.url)
        remote.configure_dvc(a, broken)
        with pytest.raises(StepFailed, match="dvc push train_base failed"):
            orchestration.run_shared_stage(a, "train_base", broken, _lock())
    key = remote.stage_key(a, "train_base")
    assert remote.SharedState(rp).shared_entry("train_base", key) is None  # no record: not done
    remote.configure_dvc(b, rp)
    rb = orchestration.run_shared_stage(b, "train_base", rp, _lock())
    assert rb.returncode == 0 and rb.ran  # built again, not "restored" from a partial upload
    assert len(runs_log.read_text().splitlines()) == 2


def test_run_records_round_trip(origin, tmp_path, rp):
    a, b = _host(origin, "host_a", tmp_path), _host(origin, "host_b", tmp_path)
    state = remote.SharedState(rp)
    assert not state.restore_current("u_one", b)
    (a / "dvc.lock").write_text("schema: '2.0'\nstages: {x: {cmd: y}}\n")
    (a / "params.yaml").write_text("user:\n  id: u_one\n")
    state.save_current("u_one", a)
    assert state.restore_current("u_one", b) and (b / "dvc.lock").read_text() == (a / "dvc.lock").read_text()
    state.record_run("u_one", "run1", a, {"user_id": "u_one", "model_id": "m1"})
    state.record_run("u_one", "run2", a, {"user_id": "u_one", "model_id": "m2"})
    hist = state.history("u_one")
    assert [h["model_id"] for h in hist] == ["m1", "m2"] and hist[0]["record"].startswith(f"{rp.url}/runs/u_one/history/")
    assert state.users() == ["u_one"]
    with pytest.raises(StepFailed, match="safe path segment"):
        state.save_current("../x", a)


def test_unusable_store_fails_in_one_line_naming_endpoint_and_bucket(s3_server, s3_bucket, monkeypatch):
    with pytest.raises(StepFailed) as err:
        remote.check(RemoteParams(url="s3://no-such-bucket-here/x", endpoint_url=s3_server))
    assert str(err.value) == f"object store {s3_server}, bucket 'no-such-bucket-here' (prefix 'x'): no such bucket"

    with pytest.raises(StepFailed) as err:
        remote.check(RemoteParams(url=f"s3://{s3_bucket}", endpoint_url="http://127.0.0.1:9"))
    assert str(err.value).startswith("object store http://127.0.0.1:9, bucket") and "unreachable" in str(err.value)

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    with pytest.raises(StepFailed, match="no credentials found"):
        remote.check(RemoteParams(url=f"s3://{s3_bucket}", endpoint_url=s3_server))


def test_refused_credentials_never_show_the_secret(s3_server, s3_bucket, monkeypatch):
    """moto accepts any key by default; a proxy answering 403 stands for a store that refuses it."""
    import http.server

    class Deny(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_GET = do_PUT = do_HEAD

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    try:
        endpoint = f"http://127.0.0.1:{srv.server_port}"
        with pytest.raises(StepFailed) as err:
            remote.check(RemoteParams(url=f"s3://{s3_bucket}/p", endpoint_url=endpoint))
    finally:
        srv.shutdown()
    msg = str(err.value)
    assert "credentials refused" in msg and endpoint in msg and s3_bucket in msg
    assert "s3cr3t" not in msg and "\n" not in msg
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-value"
