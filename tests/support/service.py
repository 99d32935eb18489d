"""camtune as a service on many hosts, played on one machine: a Prefect API, an S3 endpoint, an
origin git repository holding the service's committed params.yaml, and workers that are separate
process trees, each in its own folder with its own clone, DVC cache and site cache, PREFECT_HOME,
HOME and TMPDIR. Used by tests/runners/test_service_e2e.py and benchmarks/service.py.

Nothing here reaches into camtune's internals: workers are `prefect worker start`, runs are
started by `camtune scan` or `run_deployment`, and everything measured is
read back from the Prefect API and the object store.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tests.support.repo import ROOT, copy_repo, git_commit_all

POOL = "camtune-process"  # prefect.yaml's work pool
DEPLOYMENT = "train_model/train-model"


def service_overrides(endpoint: str, bucket: str, users: list[str], workers: int, quick: bool) -> dict:
    """The operator's params.yaml edits for a service: the shared store, an S3 registry, the demo's
    users (one shared world, a dataset each)."""
    out = yaml.safe_load((ROOT / "tests" / "support" / "quick_overrides.yaml").read_text()) if quick else {}
    out.update({
        "user.id": users[0], "data.user_dataset": f"data/sample/users/{users[0]}",
        "sample_data.users": list(users),
        "pipeline.user_dataset_template": "data/sample/users/{user_id}",
        "pipeline.remote.url": f"s3://{bucket}/service", "pipeline.remote.endpoint_url": endpoint,
        "publish.registry.kind": "s3", "publish.registry.s3.bucket": bucket,
        "publish.registry.s3.prefix": "registry", "publish.registry.s3.endpoint_url": endpoint,
        "pipeline.on_busy": "wait", "pipeline.lease_s": 60, "pipeline.max_concurrent_runs": workers,
    })
    if quick:  # every demo user is due at once: > validate.min_new_verified verified images in the pool
        out.update({"sample_data.user_images_in_pool": 12, "sample_data.global_images": 36 + 12 * len(users)})
    return out


@contextmanager
def prefect_server(folder: Path, startup_timeout: float = 240):
    """`prefect server start` as an operator runs it (not the test harness's ephemeral server: that
    one does not run Prefect's services, among them the repossessor that frees a dead worker's
    expired lock leases). Its own PREFECT_HOME and SQLite database; yields the API URL."""
    import socket
    import urllib.request

    from prefect.settings import PREFECT_API_URL, temporary_settings

    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(folder), "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"})
    log = open(folder / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    t0 = time.time()
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > startup_timeout:
                raise RuntimeError(f"prefect server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass
class Worker:
    name: str
    folder: Path
    clone: Path
    env: dict
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def start(self) -> "Worker":
        self.log = self.folder / "worker.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", self.name,
             "--limit", "1"],
            cwd=self.clone, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def kill(self) -> None:
        """The host dies: SIGKILL the worker and every process under it (flow run, dvc, the step)."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *_descendants(self.proc.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """Drain: SIGTERM lets Prefect's worker stop polling and exit."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def paths(self) -> set[Path]:
        """Every folder this worker writes state to (for the shared-nothing check)."""
        out = {self.folder.resolve(), self.clone.resolve()}
        for key in ("HOME", "PREFECT_HOME", "TMPDIR", "XDG_CACHE_HOME", "DVC_SITE_CACHE_DIR"):
            out.add(Path(self.env[key]).resolve())
        cache = subprocess.run([sys.executable, "-m", "dvc", "cache", "dir"], cwd=self.clone, env=self.env,
                               capture_output=True, text=True).stdout.strip()
        if cache:
            out.add(Path(cache).resolve())
        ws = self.clone / "workspaces"
        for w in (ws.iterdir() if ws.is_dir() else []):
            out.add(w.resolve())
            local = w / ".dvc" / "config.local"
            if local.is_file():
                for line in local.read_text().splitlines():
                    if line.strip().startswith("dir ="):
                        out.add(Path(line.split("=", 1)[1].strip()).resolve())
        return out


@dataclass
class Service:
    root: Path
    api_url: str
    endpoint: str          # the S3 endpoint workers use (a counting proxy in front of the store)
    bucket: str
    users: list[str]
    overrides: dict
    aws_env: dict
    workers: list[Worker] = field(default_factory=list)
    origin: Path | None = None

    def __post_init__(self):
        from camtune.runners import orchestration

        self.origin = copy_repo(self.root / "origin")
        for junk in ("workspaces", "registry", "artifacts", "data/sample"):
            assert not (self.origin / junk).exists(), junk
        orchestration.set_params(self.origin, self.overrides)  # the operator's committed config
        git_commit_all(self.origin, "service params")

    def _env(self, folder: Path, clone: Path) -> dict:
        for sub in ("home", "prefect", "tmp", "cache", "dvc-site"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "LANG", "LC_ALL", "TZ") or k.startswith("UV_")}
        return {**keep, **self.aws_env, "PREFECT_API_URL": self.api_url, "HOME": str(folder / "home"),
                "PREFECT_HOME": str(folder / "prefect"), "TMPDIR": str(folder / "tmp"),
                "XDG_CACHE_HOME": str(folder / "cache"), "DVC_SITE_CACHE_DIR": str(folder / "dvc-site"),
                "CAMTUNE_CHECKOUT": str(clone), "PYTHONPATH": str(clone), "TF_CPP_MIN_LOG_LEVEL": "2",
                "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "camtune", "GIT_AUTHOR_EMAIL": "camtune@localhost",
                "GIT_COMMITTER_NAME": "camtune", "GIT_COMMITTER_EMAIL": "camtune@localhost",
                "PREFECT_LOGGING_LEVEL": "WARNING"}

    def host(self, name: str) -> tuple[Path, Path, dict]:
        """A new host folder with its own clone of the origin (no hardlinks into it)."""
        folder = self.root / name
        clone = folder / "camtune"
        folder.mkdir(parents=True)
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(self.origin), str(clone)], check=True,
                       capture_output=True)
        return folder, clone, self._env(folder, clone)

    def add_worker(self, name: str) -> Worker:
        folder, clone, env = self.host(name)
        w = Worker(name, folder, clone, env)
        self.workers.append(w)
        return w

    def prefect(self, *args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> str:
        proc = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=cwd, env=env or self._env(
            self.root / "operator", cwd), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 and "already exists" not in proc.stdout + proc.stderr:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def deploy(self) -> None:
        """The operator, once: the work pool and the train-model deployment (from the origin)."""
        self.prefect("work-pool", "create", POOL, "--type", "process", cwd=self.origin)
        self.prefect("--no-prompt", "deploy", "--name", "train-model", cwd=self.origin)

    def scan(self, timeout: float = 3600) -> subprocess.CompletedProcess:
        """The nightly scan, from its own host: starts train_model for every due user, waits for all."""
        if not (self.root / "scanner").exists():
            self._scanner = self.host("scanner")
        _, clone, env = self._scanner
        return subprocess.run([sys.executable, "-m", "camtune", "scan"], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def start_run(self, user_id: str) -> str:
        from prefect.deployments import run_deployment

        return str(run_deployment(DEPLOYMENT, parameters={"user_id": user_id}, timeout=0).id)

    def wait(self, run_ids: list[str], timeout: float = 3600) -> dict:
        from prefect.client.orchestration import get_client

        t0 = time.time()
        with get_client(sync_client=True) as client:
            while True:
                states = {r: client.read_flow_run(r).state for r in run_ids}
                if all(s is not None and s.is_final() for s in states.values()):
                    return states
                if time.time() - t0 > timeout:
                    raise TimeoutError({r: s.name if s else None for r, s in states.items()})
                time.sleep(2)

    # ---- what happened, read from the Prefect API and the store
    def flow_runs(self, flow_name: str) -> list:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        with get_client(sync_client=True) as client:
            return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=200)

    def base_trainings(self) -> int:
        """How many times the train_base step actually ran and finished (each run of it is its own
        Prefect flow run, `train_base_flow`; DVC starts it only when it trains)."""
        return sum(1 for r in self.flow_runs("train_base") if r.state and r.state.is_completed())

    def train_runs(self) -> list:
        return self.flow_runs("train_model")

    def workers_used(self) -> dict[str, list[str]]:
        """worker name -> users whose finished runs it recorded (run.json's worker: the
        PREFECT__WORKER_NAME Prefect's worker gave the flow run)."""
        out: dict[str, list[str]] = {}
        for u in self.users:
            for rec in self.history(u):
                out.setdefault(rec.get("worker") or "?", []).append(u)
        return {w: sorted(set(us)) for w, us in sorted(out.items())}

    def published(self) -> dict[str, str]:
        from camtune.contracts.registry import Registry
        from camtune.contracts.store import S3Store

        reg = Registry(S3Store(self.bucket, "registry", endpoint_url=self.endpoint))
        out = {}
        for u in self.users:
            latest = reg.latest_model(u)
            if latest:
                out[u] = latest["model_id"]
        return out

    def state(self):
        from camtune.runners import remote
        from camtune.core.config import RemoteParams

        return remote.SharedState(RemoteParams(url=f"s3://{self.bucket}/service", endpoint_url=self.endpoint))

    def history(self, user_id: str) -> list[dict]:
        return self.state().history(user_id)

    def history_file(self, user_id: str, record: dict, name: str) -> bytes | None:
        return self.state().read(record["record"].removeprefix(f"s3://{self.bucket}/service/") + "/" + name)

    def shared_paths(self) -> list[str]:
        """Paths two workers have in common (one inside the other's), besides the object store."""
        found = []
        for i, a in enumerate(self.workers):
            for b in self.workers[i + 1:]:
                for pa in a.paths():
                    for pb in b.paths():
                        if pa == pb or pa.is_relative_to(pb) or pb.is_relative_to(pa):
                            found.append(f"{a.name}:{pa} ~ {b.name}:{pb}")
        return sorted(set(found))

    def stop(self) -> None:
        for w in self.workers:
            w.kill()
