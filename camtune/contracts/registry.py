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

Storage sits behind one small interface (store.py: `LocalStore`, `S3Store`); `Registry` adds the
layout, tenancy (user ids must be safe path segments; a registry opened for user A refuses user B)
and the index commit, whose read-modify-write the store keeps from losing a concurrent writer's
entry (a file lock, or S3 conditional writes).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from camtune.core import atomic
from camtune.core.config import SAFE_SEGMENT, RegistryParams
from camtune.core.dataset import file_sha256
from camtune.contracts.store import ChecksumMismatch, RegistryError, Store, open_store

INDEX = "index.json"
MODEL_FILES = ("model.tflite", "model_edgetpu.tflite", "model.onnx", "labelmap.txt", "metadata.json",
               "filters.yml", "report.md", "lineage.json")
BASE_METADATA = "metadata.json"


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

    # -- writing a user model (camtune/steps/publish/release.py drives the order; the index is last)
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


def open_registry(params: RegistryParams, user_id: str | None = None) -> Registry:
    """The registry `params.yaml`'s `publish.registry` names. Pass `user_id` to scope it to one
    tenant (the publish flow does): other users' prefixes are then refused."""
    return Registry(open_store(params), user_id=user_id)
