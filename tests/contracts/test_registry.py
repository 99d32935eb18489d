"""The registry's storage layer and reader rules, on a folder and on the loopback S3 endpoint."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from camtune.core.config import RegistryParams, S3Params
from camtune.core.dataset import file_sha256
from camtune.contracts.registry import ChecksumMismatch, RegistryError, open_registry
from tests.support.s3 import s3_client


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_readers_see_only_what_the_index_names(rp, tmp_path):
    reg = open_registry(rp)
    # a half-written entry (files, no index line) is invisible
    reg.put_model_file("u1", "orphan", "lineage.json", _file(tmp_path, "l.json", b'{"image_ids": [1]}'))
    assert reg.models("u1") == [] and reg.latest_model("u1") is None and reg.latest_lineage("u1") is None
    with pytest.raises(RegistryError, match="no published model 'orphan'"):
        reg.read_file("u1", "orphan", "lineage.json")

    info = reg.put_model_file("u1", "m1", "lineage.json", _file(tmp_path, "l1.json", b'{"image_ids": [1, 2]}'))
    entry, created = reg.commit("u1", {"model_id": "m1", "files": {"lineage.json": info}})
    assert created and entry["model_id"] == "m1"
    assert reg.latest_lineage("u1") == {"image_ids": [1, 2]}
    assert reg.commit("u1", {"model_id": "m1", "files": {}}) == (entry, False)
    with pytest.raises(RegistryError, match="not a registry model file"):
        reg.read_file("u1", "m1", "../index.json")
    with pytest.raises(RegistryError, match="no report.md"):
        reg.read_file("u1", "m1", "report.md")


def test_corrupt_index_is_an_error_not_an_empty_registry(rp):
    reg = open_registry(rp)
    reg.store.put_bytes("users/u1/index.json", b"{not json")
    with pytest.raises(RegistryError, match="index.json: not valid JSON"):
        reg.latest_model("u1")
    reg.store.put_bytes("users/u1/index.json", b'{"models": {}}')
    with pytest.raises(RegistryError, match="expected"):
        reg.latest_model("u1")


def test_index_model_id_must_be_safe(rp):
    reg = open_registry(rp)
    reg.store.put_bytes("users/u1/index.json", json.dumps({"models": [{"model_id": "../../u2/x"}]}).encode())
    with pytest.raises(RegistryError, match="not a safe path segment"):
        reg.latest_lineage("u1")


def test_base_publish_pull_and_tamper(rp, tmp_path):
    reg = open_registry(rp, user_id="u1")  # a tenant may read and publish the shared base
    files = {"checkpoint": _file(tmp_path, "checkpoint", b'model_checkpoint_path: "ckpt-1"\n'),
             "ckpt-1.index": _file(tmp_path, "i", b"idx"), "sub/params.yaml": _file(tmp_path, "p", b"a: 1\n")}
    meta, created = reg.publish_base("base-abc", files, {"metrics": {"map50": 0.3}})
    assert created and meta["files"]["ckpt-1.index"]["sha256"] == hashlib.sha256(b"idx").hexdigest()
    assert reg.publish_base("base-abc", files, {})[1] is False  # write-once
    assert reg.base_ids() == ["base-abc"]
    out = reg.pull_base("base-abc", tmp_path / "pulled")
    assert (out / "sub/params.yaml").read_text() == "a: 1\n"
    assert json.loads((out / "registry_base.json").read_text())["metrics"] == {"map50": 0.3}

    reg.store.put_bytes("base/base-abc/files/ckpt-1.index", b"evil")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest/keep").write_text("old")
    with pytest.raises(ChecksumMismatch, match="does not match metadata.json"):
        reg.pull_base("base-abc", tmp_path / "dest")
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["keep"]  # untouched
    with pytest.raises(RegistryError, match="no such base model"):
        reg.pull_base("base-none", tmp_path / "x")
    with pytest.raises(RegistryError, match="unsafe file name"):
        reg.publish_base("base-2", {"../x": files["checkpoint"]}, {})


def test_s3_upload_keeps_a_verified_sha256(s3_server, s3_bucket, tmp_path):
    rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, prefix="", endpoint_url=s3_server))
    reg = open_registry(rp)
    src = _file(tmp_path, "m.tflite", b"x" * 5000)
    info = reg.put_model_file("u1", "m1", "model.tflite", src)
    assert info["uri"] == f"s3://{s3_bucket}/users/u1/m1/model.tflite"
    head = s3_client(s3_server).head_object(Bucket=s3_bucket, Key="users/u1/m1/model.tflite", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == file_sha256(src) == info["sha256"]
    with pytest.raises(ChecksumMismatch, match="sha256 after upload"):
        reg.store.verify("users/u1/m1/model.tflite", "0" * 64)


def test_s3_multipart_upload_is_verified_by_rereading(s3_server, s3_bucket, tmp_path):
    """Above the threshold the transfer manager goes multipart; the composite checksum is not a
    whole-file sha256, so the store re-reads the object to verify it."""
    rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, prefix="", endpoint_url=s3_server,
                                               multipart_threshold_mb=5))
    reg = open_registry(rp)
    src = _file(tmp_path, "big.tflite", bytes(range(256)) * (6 * 4096 + 7))  # ~6 MiB
    info = reg.put_model_file("u1", "m1", "model.tflite", src)
    assert info["sha256"] == file_sha256(src)
    head = s3_client(s3_server).head_object(Bucket=s3_bucket, Key="users/u1/m1/model.tflite")
    assert "-" in head["ETag"]  # it really was a multipart upload


def test_local_store_leaves_no_temp_files(tmp_path):
    reg = open_registry(RegistryParams(root=str(tmp_path / "reg")))
    info = reg.put_model_file("u1", "m1", "report.md", _file(tmp_path, "r.md", b"# hi\n"))
    reg.commit("u1", {"model_id": "m1", "files": {"report.md": info}})
    names = sorted(p.name for p in (tmp_path / "reg").rglob("*") if p.is_file())
    assert names == [".index.json.lock", "index.json", "report.md"]
    assert info["uri"] == (tmp_path / "reg/users/u1/m1/report.md").resolve().as_uri()
