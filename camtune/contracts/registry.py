"""The model registry: a local folder or an S3 prefix (docs/ARCHITECTURE.md "The registry").

```
<root>/base/<base_id>/                 checkpoint files + metadata.json (written last)
<root>/users/<user_id>/<model_id>/<upload_id>/   model.tflite, model_edgetpu.tflite, labelmap.txt,
                                       metadata.json, filters.yml, report.md, lineage.json
                                       (entries written before upload ids: <model_id>/<file>)
<root>/users/<user_id>/index.json      {"user_id", "models": [entry, ...]} newest last, written LAST
```

A model exists only once `index.json` names it: readers go through the index and never list
folders, so a publish that died half-way leaves nothing a reader trusts. Each publish writes its
files under its own `upload_id` and never over another's, and the index entry names that
upload_id: two publishes of one model id racing each other end with one entry whose files are
exactly the ones it committed (the loser's copies stay unreferenced). Every index entry carries
the sha256 of each file, and every read is checked against it.

Storage sits behind one small interface (`LocalStore`, `S3Store`); `Registry` adds the layout,
tenancy (user ids must be safe path segments; a registry opened for user A refuses user B) and the
index commit. Index updates are read-modify-write and must not lose a concurrent writer's entry:
`LocalStore` holds a file lock (filelock) around it; `S3Store` uses S3 conditional writes
(`If-Match` on the ETag read, `If-None-Match: *` for the first entry) and re-reads on a 412,
because S3 has no locks and a lock object would need a lease/expiry protocol of its own, while
conditional PUTs are atomic on the server (AWS since 2024, MinIO, and moto server for tests).
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Callable, Protocol

from camtune.core import atomic
from camtune.core.config import SAFE_SEGMENT, RegistryParams
from camtune.core.dataset import file_sha256
from camtune.core.errors import StepFailed

log = logging.getLogger(__name__)

INDEX = "index.json"
MODEL_FILES = ("model.tflite", "model_edgetpu.tflite", "model.onnx", "labelmap.txt", "metadata.json",
               "filters.yml", "report.md", "lineage.json")
BASE_METADATA = "metadata.json"
_CHUNK = 1 << 20


class RegistryError(StepFailed):
    """The registry refused a request (unsafe id, another user's prefix, missing/corrupt file)."""


class ChecksumMismatch(RegistryError):
    """A file's sha256 after upload/download is not the one expected (worth retrying an upload)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_segment(value: object, what: str) -> str:
    """A user/model/base id becomes a path segment and an S3 key part: refuse anything else."""
    if not isinstance(value, str) or not SAFE_SEGMENT.fullmatch(value):
        raise RegistryError(f"{what} {value!r} is not a safe path segment "
                            f"(letters, digits, '_', '.', '-'; at most 64; no leading '.' or '-')")
    return value


def _key(*parts: str) -> str:
    return "/".join(parts)


# --------------------------------------------------------------------------------------------
# storage


class Store(Protocol):
    """Keys are '/'-separated, relative to the registry root."""

    def uri(self, key: str) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def download(self, key: str, dest: Path) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, src: Path, sha256: str) -> None: ...
    def list_dirs(self, key: str) -> list[str]: ...
    def update_json(self, key: str, fn: Callable[[dict | None], dict | None]) -> dict | None: ...


class LocalStore:
    """A folder. Files are written atomically (temp + rename); the index under a file lock."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*PurePosixPath(key).parts)

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def download(self, key: str, dest: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise RegistryError(f"{self.uri(key)}: not found")
        self._copy(src, dest)

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic.write_bytes(self._path(key), data)

    def put_file(self, key: str, src: Path, sha256: str) -> None:
        dest = self._path(key)
        self._copy(src, dest)
        got = file_sha256(dest)
        if got != sha256:
            raise ChecksumMismatch(f"{self.uri(key)}: sha256 after copy is {got}, expected {sha256}")

    @staticmethod
    def _copy(src: Path, dest: Path) -> None:
        atomic.copy_file(src, dest)

    def list_dirs(self, key: str) -> list[str]:
        p = self._path(key)
        return sorted(c.name for c in p.iterdir() if c.is_dir()) if p.is_dir() else []

    def update_json(self, key: str, fn: Callable[[dict | None], dict | None]) -> dict | None:
        from filelock import FileLock

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The lock file sits beside the index; readers never take it (the index itself is
        # replaced atomically), only writers serialise their read-modify-write on it.
        with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=120):
            raw = self.read(key)
            current = json.loads(raw) if raw is not None else None
            new = fn(current)
            if new is not None:
                atomic.write_json(path, new)
                return new
            return current


class S3Store:
    """An S3 bucket + prefix through boto3. Credentials come from boto3's default chain (env vars,
    shared config, instance/role credentials), never from params, and are never logged."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, retry_mode: str = "standard", max_attempts: int = 5,
                 multipart_threshold_mb: int = 64):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Transient errors (503 SlowDown, 500, throttling, connection resets) are retried by
        # botocore itself with backoff; no hand-written retry loop.
        cfg = Config(retries={"mode": retry_mode, "max_attempts": max_attempts},
                     region_name=region,
                     # path-style works with every S3-compatible endpoint (IP addresses, MinIO)
                     s3={"addressing_style": "path"} if endpoint_url else None)
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=cfg)
        self.transfer_config = TransferConfig(multipart_threshold=multipart_threshold_mb << 20,
                                              multipart_chunksize=max(8, multipart_threshold_mb // 4) << 20)
        self.endpoint_url = endpoint_url

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._k(key)}"

    @staticmethod
    def _missing(exc) -> bool:
        code = exc.response.get("Error", {}).get("Code")
        return code in ("NoSuchKey", "404", "NotFound")

    def _get(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return resp["Body"].read(), resp["ETag"]

    def read(self, key: str) -> bytes | None:
        got = self._get(key)
        return None if got is None else got[0]

    def download(self, key: str, dest: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            with atomic.replacing(dest) as tmp:
                self.client.download_file(self.bucket, self._k(key), tmp, Config=self.transfer_config)
        except ClientError as exc:
            if self._missing(exc):
                raise RegistryError(f"{self.uri(key)}: not found") from None
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data,
                               ChecksumAlgorithm="SHA256")

    def put_file(self, key: str, src: Path, sha256: str) -> None:
        # The transfer manager picks single PUT or multipart; ChecksumAlgorithm makes S3 verify
        # the body on receipt and keep the checksum, which we compare to ours afterwards.
        self.client.upload_file(str(src), self.bucket, self._k(key),
                                ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=self.transfer_config)
        self.verify(key, sha256)

    def verify(self, key: str, sha256: str) -> None:
        head = self.client.head_object(Bucket=self.bucket, Key=self._k(key), ChecksumMode="ENABLED")
        stored = head.get("ChecksumSHA256")
        # A multipart object (ETag "<md5>-<parts>") carries a checksum of part checksums, not
        # the file's sha256; only a single-PUT object's checksum can be compared directly.
        multipart = "-" in head.get("ETag", "") or head.get("ChecksumType") == "COMPOSITE"
        if stored and not multipart:  # S3 verified the body against it on receipt
            got = base64.b64decode(stored).hex()
        else:  # multipart (composite checksum) or a store without checksums: re-read and hash
            h = hashlib.sha256()
            body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
            for block in iter(lambda: body.read(_CHUNK), b""):
                h.update(block)
            got = h.hexdigest()
        if got != sha256:
            raise ChecksumMismatch(f"{self.uri(key)}: sha256 after upload is {got}, expected {sha256}")

    def list_dirs(self, key: str) -> list[str]:
        prefix = self._k(key).rstrip("/") + "/"
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            out += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(out)

    def update_json(self, key: str, fn: Callable[[dict | None], dict | None],
                    max_conflicts: int = 50) -> dict | None:
        """Optimistic concurrency: read (body, ETag), apply `fn`, PUT only if the ETag is still the
        one we read (or, for a new key, only if none exists). A 412/409 means another writer got
        there first: re-read and re-apply. `fn` must be idempotent (a retried PUT that did land
        shows up as our own change on the re-read)."""
        from botocore.exceptions import ClientError

        for _ in range(max_conflicts):
            got = self._get(key)
            current = json.loads(got[0]) if got is not None else None
            new = fn(current)
            if new is None:
                return current
            body = (json.dumps(new, indent=2, sort_keys=True) + "\n").encode()
            cond = {"IfMatch": got[1]} if got is not None else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=body,
                                       ContentType="application/json", **cond)
                return new
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                    log.info("%s changed while we updated it; re-reading", self.uri(key))
                    continue
                raise
        raise RegistryError(f"{self.uri(key)}: gave up after {max_conflicts} conflicting updates")


# --------------------------------------------------------------------------------------------
# the registry


class Registry:
    """The layout on top of a store. `user_id`, when given, scopes the registry to one tenant:
    it then reads and writes only that user's prefix (and the shared `base/`)."""

    def __init__(self, store: Store, user_id: str | None = None):
        self.store = store
        self.user_id = check_segment(user_id, "user id") if user_id is not None else None

    # -- keys and tenancy
    def _user(self, user_id: str) -> str:
        check_segment(user_id, "user id")
        if self.user_id is not None and user_id != self.user_id:
            raise RegistryError(f"this registry is opened for user {self.user_id!r}; "
                                f"user {user_id!r}'s models are not readable or writable from it")
        return user_id

    def _user_key(self, user_id: str, *parts: str) -> str:
        return _key("users", self._user(user_id), *parts)

    def _model_key(self, user_id: str, model_id: str, name: str, upload_id: str | None = None) -> str:
        if name not in MODEL_FILES:
            raise RegistryError(f"{name!r} is not a registry model file (one of {', '.join(MODEL_FILES)})")
        parts = [check_segment(model_id, "model id")]
        if upload_id is not None:
            parts.append(check_segment(upload_id, "upload id"))
        return self._user_key(user_id, *parts, name)

    def _entry_key(self, user_id: str, entry: dict, name: str) -> str:
        """Where an index entry's file is: under its upload_id (older entries: beside the id)."""
        return self._model_key(user_id, entry.get("model_id"), name, entry.get("upload_id"))

    def uri(self, key: str) -> str:
        return self.store.uri(key)

    def model_uri(self, user_id: str, model_id: str, name: str) -> str:
        """The committed file's URI (through the index entry)."""
        return self.store.uri(self._entry_key(user_id, self.model(user_id, model_id), name))

    # -- reading (through the index only)
    def index(self, user_id: str) -> dict:
        raw = self.store.read(self._user_key(user_id, INDEX))
        if raw is None:
            return {"user_id": user_id, "models": []}
        try:
            idx = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{self.uri(self._user_key(user_id, INDEX))}: not valid JSON: {exc}") from None
        if not isinstance(idx, dict) or not isinstance(idx.get("models"), list):
            raise RegistryError(f"{self.uri(self._user_key(user_id, INDEX))}: expected {{'models': [...]}}")
        return idx

    def models(self, user_id: str) -> list[dict]:
        """The user's published models, oldest first (the index order)."""
        return list(self.index(user_id)["models"])

    def latest_model(self, user_id: str) -> dict | None:
        models = self.models(user_id)
        return models[-1] if models else None

    def current_model(self, user_id: str) -> dict | None:
        """The model the user runs: the newest entry not recorded as `"promoted": false` (a model
        worse than its incumbent is kept in the index, never installed by default; docs/incumbent.md)."""
        models = [m for m in self.models(user_id) if m.get("promoted", True) is not False]
        return models[-1] if models else None

    def model(self, user_id: str, model_id: str) -> dict:
        for entry in self.models(user_id):
            if entry.get("model_id") == model_id:
                return entry
        raise RegistryError(f"user {user_id!r} has no published model {model_id!r} "
                            f"in {self.uri(self._user_key(user_id, INDEX))}")

    def read_file(self, user_id: str, model_id: str, name: str) -> bytes:
        """A file of a published model, checked against the sha256 in its index entry."""
        entry = self.model(user_id, model_id)
        key = self._entry_key(user_id, entry, name)
        expected = (entry.get("files") or {}).get(name, {}).get("sha256")
        if expected is None:
            raise RegistryError(f"model {model_id!r} of user {user_id!r} has no {name}")
        data = self.store.read(key)
        if data is None:
            raise RegistryError(f"{self.uri(key)}: named by the index but missing")
        if sha256_bytes(data) != expected:
            raise ChecksumMismatch(f"{self.uri(key)}: sha256 {sha256_bytes(data)} does not match the index ({expected})")
        return data

    def download_file(self, user_id: str, model_id: str, name: str, dest: str | Path) -> Path:
        """Download a published model file to `dest` (atomically), verifying its sha256."""
        entry = self.model(user_id, model_id)
        key = self._entry_key(user_id, entry, name)
        expected = (entry.get("files") or {}).get(name, {}).get("sha256")
        if expected is None:
            raise RegistryError(f"model {model_id!r} of user {user_id!r} has no {name}")
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.download")
        self.store.download(key, tmp)
        got = file_sha256(tmp)
        if got != expected:
            tmp.unlink(missing_ok=True)
            raise ChecksumMismatch(f"{self.uri(key)}: sha256 {got} does not match the index ({expected})")
        os.replace(tmp, dest)
        return dest

    def read_json(self, user_id: str, model_id: str, name: str) -> dict:
        return json.loads(self.read_file(user_id, model_id, name))

    def latest_lineage(self, user_id: str) -> dict | None:
        """lineage.json of the newest indexed model (has "image_ids"), or None when none."""
        latest = self.latest_model(user_id)
        return None if latest is None else self.read_json(user_id, latest["model_id"], "lineage.json")

    # -- writing a user model (publishing.py drives the order; the index is last)
    def put_model_file(self, user_id: str, model_id: str, name: str, src: str | Path,
                       upload_id: str | None = None) -> dict:
        """Write one file of a model; with `upload_id` (publishing always gives one) under that
        upload's own key, so a concurrent publish of the same id never overwrites it."""
        key = self._model_key(user_id, model_id, name, upload_id)
        src = Path(src)
        digest = file_sha256(src)
        self.store.put_file(key, src, digest)
        return {"sha256": digest, "size": src.stat().st_size, "uri": self.store.uri(key)}

    def commit(self, user_id: str, entry: dict) -> tuple[dict, bool]:
        """Append `entry` to the user's index (the commit point). Idempotent: when the index
        already names entry["model_id"], nothing changes. Returns (the indexed entry, created)."""
        model_id = check_segment(entry.get("model_id"), "model id")
        key = self._user_key(user_id, INDEX)
        created = False

        def add(current: dict | None) -> dict | None:
            nonlocal created
            idx = current or {"user_id": user_id, "models": []}
            if any(m.get("model_id") == model_id for m in idx["models"]):
                created = False
                return None
            created = True
            return {**idx, "user_id": user_id, "models": [*idx["models"], entry]}

        self.store.update_json(key, add)
        return self.model(user_id, model_id), created

    # -- the shared base models
    def base_ids(self) -> list[str]:
        """Bases whose metadata.json (their commit point) exists."""
        return [b for b in self.store.list_dirs("base")
                if SAFE_SEGMENT.fullmatch(b) and self.store.read(_key("base", b, BASE_METADATA)) is not None]

    def base_metadata(self, base_id: str) -> dict | None:
        raw = self.store.read(_key("base", check_segment(base_id, "base id"), BASE_METADATA))
        return None if raw is None else json.loads(raw)

    def publish_base(self, base_id: str, files: dict[str, str | Path], metadata: dict) -> tuple[dict, bool]:
        """Upload a base checkpoint ({relative name: local file}), then metadata.json, which lists
        every file with its sha256 and is the base's commit point. Bases are shared and
        write-once: an existing base_id is left as it is. Returns (metadata, created)."""
        check_segment(base_id, "base id")
        existing = self.base_metadata(base_id)
        if existing is not None:
            return existing, False
        if not files:
            raise RegistryError(f"base {base_id!r}: no files to publish")
        listed = {}
        for rel, path in sorted(files.items()):
            parts = PurePosixPath(rel).parts
            if PurePosixPath(rel).is_absolute() or ".." in parts or not parts:
                raise RegistryError(f"base {base_id!r}: unsafe file name {rel!r}")
            path = Path(path)
            digest = file_sha256(path)
            self.store.put_file(_key("base", base_id, "files", rel), path, digest)
            listed[rel] = {"sha256": digest, "size": path.stat().st_size}
        meta = {**metadata, "base_id": base_id, "files": listed}
        self.store.put_bytes(_key("base", base_id, BASE_METADATA),
                             (json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n").encode())
        return meta, True

    def pull_base(self, base_id: str, dest_dir: str | Path) -> Path:
        """Download base `base_id`'s checkpoint folder into `dest_dir` (replaced atomically, every
        file checked against metadata.json) and write its metadata.json beside it."""
        meta = self.base_metadata(base_id)
        if meta is None:
            raise RegistryError(f"{self.uri(_key('base', base_id, BASE_METADATA))}: no such base model")
        with atomic.output_dir(dest_dir) as tmp:
            for rel, info in meta["files"].items():
                parts = PurePosixPath(rel).parts
                if PurePosixPath(rel).is_absolute() or ".." in parts:
                    raise RegistryError(f"base {base_id!r}: unsafe file name {rel!r} in metadata.json")
                dest = tmp.joinpath(*parts)
                self.store.download(_key("base", base_id, "files", rel), dest)
                got = file_sha256(dest)
                if got != info["sha256"]:
                    raise ChecksumMismatch(f"{self.uri(_key('base', base_id, 'files', rel))}: sha256 {got} "
                                        f"does not match metadata.json ({info['sha256']})")
            atomic.write_json(tmp / "registry_base.json", meta)
        return Path(dest_dir)


def open_store(params: RegistryParams) -> Store:
    if params.kind == "local":
        return LocalStore(params.root)
    s3 = params.s3
    if not s3.bucket:
        raise RegistryError("publish.registry.s3.bucket is required when kind is s3")
    return S3Store(s3.bucket, s3.prefix, endpoint_url=s3.endpoint_url, region=s3.region,
                   retry_mode=s3.retry_mode, max_attempts=s3.max_attempts,
                   multipart_threshold_mb=s3.multipart_threshold_mb)


def open_registry(params: RegistryParams, user_id: str | None = None) -> Registry:
    """The registry `params.yaml`'s `publish.registry` names. Pass `user_id` to scope it to one
    tenant (the publish flow does): other users' prefixes are then refused."""
    return Registry(open_store(params), user_id=user_id)
