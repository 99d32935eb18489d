"""Where the registry's bytes live: one small interface (`Store`) over a folder (`LocalStore`) or an
S3 prefix (`S3Store`); `open_store` picks the one `publish.registry` names. Keys are '/'-separated,
relative to the registry root. The registry's layout, tenancy and index commit are registry.py's.

Index updates are read-modify-write (`update_json`) and must not lose a concurrent writer's entry:
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
from pathlib import Path, PurePosixPath
from typing import Callable, Protocol

from camtune.core import atomic
from camtune.core.config import RegistryParams
from camtune.core.dataset import file_sha256
from camtune.core.errors import StepFailed

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class RegistryError(StepFailed):
    """The registry refused a request (unsafe id, another user's prefix, missing/corrupt file)."""


class ChecksumMismatch(RegistryError):
    """A file's sha256 after upload/download is not the one expected (worth retrying an upload)."""


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


def open_store(params: RegistryParams) -> Store:
    if params.kind == "local":
        return LocalStore(params.root)
    s3 = params.s3
    if not s3.bucket:
        raise RegistryError("publish.registry.s3.bucket is required when kind is s3")
    return S3Store(s3.bucket, s3.prefix, endpoint_url=s3.endpoint_url, region=s3.region,
                   retry_mode=s3.retry_mode, max_attempts=s3.max_attempts,
                   multipart_threshold_mb=s3.multipart_threshold_mb)
