"""The state workers on many hosts share: one S3-compatible object store (`pipeline.remote.url`),
used through the engines that already own each kind of state. Nothing here is a scheduler or a
lock (Prefect's global concurrency limits are the locks; see camtune/runners/pipeline.py).

    s3://bucket/prefix/
      dvc/...                            DVC's remote: every stage output, content-addressed (dvc push/pull)
      shared/<stage>/<key>.json          a shared stage's dvc.lock entry, keyed by DVC's run-cache key of
                                         the stage (cmd + deps hashes + params); written only after
                                         `dvc push` of its outputs succeeded: the commit point
      runs/<user>/current/{dvc.lock,params.yaml}
                                         the user's newest state, updated after every finished stage, so
                                         a run on another worker skips what was done
      runs/<user>/history/<UTC time>-<run id>/{dvc.lock,params.yaml,run.json}
                                         one record per finished run (the operator's history)

Credentials come from the standard AWS chain (environment, ~/.aws, instance role), never from
params or a file in the repository; DVC's remote is configured in `.dvc/config.local` (not
committed) with the URL and endpoint only.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from camtune.core import atomic
from camtune.core.config import SAFE_SEGMENT, RemoteParams
from camtune.core.errors import StepFailed

DVC_REMOTE = "camtune-shared"  # the name of the DVC remote in each workspace's .dvc/config.local


def where(rp: RemoteParams) -> str:
    """How errors name the store: endpoint and bucket, never a credential."""
    bucket, prefix = rp.bucket_prefix()
    return f"object store {rp.endpoint_url or 'AWS S3'}, bucket {bucket!r}" + (f" (prefix {prefix!r})" if prefix else "")


def _probe_client(rp: RemoteParams):
    """A client that gives up fast: check() must answer in seconds, not after minutes of retries."""
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"mode": "standard", "max_attempts": 2}, region_name=rp.region,
                 connect_timeout=5, read_timeout=15,
                 s3={"addressing_style": "path"} if rp.endpoint_url else None)
    return boto3.session.Session().client("s3", endpoint_url=rp.endpoint_url, config=cfg)


def check(rp: RemoteParams) -> None:
    """Fail fast, in one line, when the store cannot be used: unreachable, no or wrong credentials,
    missing bucket. Run before the first stage so nothing is half-done against a dead store."""
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError,
                                     NoCredentialsError)

    bucket, prefix = rp.bucket_prefix()
    client = _probe_client(rp)
    try:
        client.head_bucket(Bucket=bucket)
        # a bucket we may see but not write is as useless as none: try a tiny write under our prefix
        client.put_object(Bucket=bucket, Key=_key(prefix, "shared/.probe"), Body=b"ok")
    except NoCredentialsError:
        raise StepFailed(f"{where(rp)}: no credentials found (set AWS_ACCESS_KEY_ID / "
                         "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)") from None
    except EndpointConnectionError:
        raise StepFailed(f"{where(rp)}: unreachable") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise StepFailed(f"{where(rp)}: no such bucket") from None
        if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or status == 403:
            raise StepFailed(f"{where(rp)}: credentials refused ({code})") from None
        raise StepFailed(f"{where(rp)}: {code} (HTTP {status})") from None
    except BotoCoreError as exc:  # timeouts, proxy and TLS errors: their messages carry no secrets
        raise StepFailed(f"{where(rp)}: unreachable ({type(exc).__name__})") from None


def _key(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


class SharedState:
    """Shared-stage records and run records in the store (the DVC remote is DVC's own business),
    through the registry's S3 store: same client settings, retries and missing-key handling."""

    def __init__(self, rp: RemoteParams):
        from camtune.contracts.store import S3Store

        self.rp = rp
        self.bucket, self.prefix = rp.bucket_prefix()
        self.store = S3Store(self.bucket, self.prefix, endpoint_url=rp.endpoint_url, region=rp.region)

    def uri(self, key: str) -> str:
        return self.store.uri(key)

    def read(self, key: str) -> bytes | None:
        return self.store.read(key)

    def put(self, key: str, data: bytes) -> None:
        # one PUT is atomic in S3: a reader sees the old object or the whole new one
        self.store.put_bytes(key, data)

    def list(self, prefix: str) -> list[str]:
        return self.store.list_dirs(prefix)

    # -- shared stages (the base): one dvc.lock entry per DVC stage key
    @staticmethod
    def _shared(stage: str, key: str) -> str:
        return f"shared/{stage}/{key}.json"

    def shared_entry(self, stage: str, key: str) -> dict | None:
        raw = self.read(self._shared(stage, key))
        return None if raw is None else json.loads(raw)

    def commit_shared(self, stage: str, key: str, entry: dict, by: dict) -> None:
        self.put(self._shared(stage, key),
                 (json.dumps({"stage": stage, "key": key, "entry": entry, "by": by}, indent=1,
                             sort_keys=True) + "\n").encode())

    # -- per-user run records
    def save_current(self, user_id: str, workspace: Path) -> None:
        _safe(user_id)
        for name in ("params.yaml", "dvc.lock"):
            path = workspace / name
            if path.is_file():
                self.put(f"runs/{user_id}/current/{name}", path.read_bytes())

    def restore_current(self, user_id: str, workspace: Path) -> bool:
        """The user's newest dvc.lock into the workspace (DVC then skips every stage it lists as
        done and pulls its outputs); False when the user has no record yet."""
        raw = self.read(f"runs/{_safe(user_id)}/current/dvc.lock")
        if raw is None:
            return False
        atomic.write_bytes(workspace / "dvc.lock", raw)
        return True

    def record_run(self, user_id: str, run_id: str, workspace: Path, summary: dict) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = f"runs/{_safe(user_id)}/history/{stamp}-{run_id}"
        for name in ("params.yaml", "dvc.lock"):
            if (workspace / name).is_file():
                self.put(f"{base}/{name}", (workspace / name).read_bytes())
        # run.json last: a history entry without it is a record that did not finish writing
        self.put(f"{base}/run.json", (json.dumps(summary, indent=1, sort_keys=True, default=str) + "\n").encode())
        return self.uri(base)

    def history(self, user_id: str) -> list[dict]:
        """The user's finished runs, oldest first (each run.json, with its record's URI)."""
        out = []
        for name in self.list(f"runs/{_safe(user_id)}/history"):
            raw = self.read(f"runs/{user_id}/history/{name}/run.json")
            if raw is not None:
                out.append({**json.loads(raw), "record": self.uri(f"runs/{user_id}/history/{name}")})
        return out

    def users(self) -> list[str]:
        return [u for u in self.list("runs") if SAFE_SEGMENT.match(u)]


def _safe(user_id: str) -> str:
    if not SAFE_SEGMENT.fullmatch(user_id):
        raise StepFailed(f"user id {user_id!r} is not a safe path segment")
    return user_id


# ------------------------------------------------------------------------------- DVC side


def _dvc(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=workspace, capture_output=True, text=True)


def configure_dvc(workspace: Path, rp: RemoteParams) -> None:
    """The store's dvc/ prefix as the workspace's default DVC remote, in .dvc/config.local (never
    committed, and holding no credential: DVC's S3 client takes them from the AWS chain)."""
    bucket, prefix = rp.bucket_prefix()
    url = f"s3://{bucket}/{_key(prefix, 'dvc')}"
    steps = [("remote", "add", "--local", "--force", "--default", DVC_REMOTE, url)]
    if rp.endpoint_url:
        steps.append(("remote", "modify", "--local", DVC_REMOTE, "endpointurl", rp.endpoint_url))
    if rp.region:
        steps.append(("remote", "modify", "--local", DVC_REMOTE, "region", rp.region))
    for args in steps:
        proc = _dvc(workspace, *args)
        if proc.returncode != 0:
            raise StepFailed(f"{workspace}: dvc {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")


def push(workspace: Path, stages: list[str], rp: RemoteParams) -> None:
    """`dvc push` of these stages' outputs. Raises on any failure: the caller then writes no record,
    so an interrupted push is never taken for a finished stage."""
    proc = _dvc(workspace, "push", "--remote", DVC_REMOTE, *stages)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise StepFailed(f"{where(rp)}: dvc push {' '.join(stages)} failed:\n{tail}")


def stage_key(workspace: Path, stage: str) -> str | None:
    """DVC's run-cache key of `stage` as it stands in the workspace: cmd, every dep's hash, the
    params it reads, its out paths. Same key = same inputs = the same output. None when a dep is
    missing (it cannot be hashed yet). DVC leaves `persist` stages out of its own run-cache (their
    outputs are resumed in place), so the shared base is keyed and recorded by us with DVC's key."""
    from dvc.repo import Repo
    from dvc.stage.cache import _get_cache_hash
    from dvc.stage.serialize import to_single_stage_lockfile

    with Repo(str(workspace)) as repo:
        # an explicit dvc.yaml path: a bare stage name is looked up from the process cwd
        (st,) = repo.stage.collect(f"{Path(workspace).resolve() / 'dvc.yaml'}:{stage}")
        if not all(d.exists for d in st.deps):
            return None
        st.save_deps()
        return _get_cache_hash(to_single_stage_lockfile(st), key=True)


def lock_entry(workspace: Path, stage: str) -> dict | None:
    lock = workspace / "dvc.lock"
    if not lock.is_file():
        return None
    return ((yaml.safe_load(lock.read_text()) or {}).get("stages") or {}).get(stage)


def put_lock_entry(workspace: Path, stage: str, entry: dict) -> None:
    """Write one stage's entry into the workspace's dvc.lock (as `dvc repro` would have after
    running it), so DVC sees the stage done and `dvc repro --pull` fetches its outputs."""
    lock = workspace / "dvc.lock"
    doc = (yaml.safe_load(lock.read_text()) if lock.is_file() else None) or {"schema": "2.0", "stages": {}}
    doc.setdefault("stages", {})[stage] = entry
    atomic.write_text(lock, yaml.safe_dump(doc, sort_keys=False))
