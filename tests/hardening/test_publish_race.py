"""Publishing is idempotent under races (issue 28, item 7): two publishes of one model id, run at
the same time with different metadata, end with one index entry whose every file reads back
with the checksum the index holds, against the local store and S3 (moto)."""
from __future__ import annotations

import json
import threading

import pytest

from camtune.steps.publish import release as publishing
from camtune.contracts import registry


def _plan(tmp_path, tag: str) -> publishing.Plan:
    d = tmp_path / tag
    d.mkdir()
    files = {}
    for name, data in (("model.tflite", b"TFL3 same model bytes"), ("labelmap.txt", b"0 person\n"),
                       ("lineage.json", json.dumps({"image_ids": [1], "who": tag}).encode()),
                       ("metadata.json", json.dumps({"name": f"m-{tag}", "trainDate": "2026-10-01",
                                                     "variants": {"cpu": {"id": "u1-m1", "file": "model.tflite",
                                                                          "supportedDetectors": ["cpu"]}}}).encode())):
        (d / name).write_bytes(data)
        files[name] = d / name
    meta = json.loads(files["metadata.json"].read_text())
    return publishing.Plan(user_id="u1", model_id="u1-m1", files=files, metadata=meta, lineage={}, base_id=None)


def test_two_concurrent_publishes_of_one_id_leave_one_consistent_entry(tmp_path, rp, monkeypatch):
    """The interleaving that corrupted an entry: A writes its files, B writes its files (same
    keys before), then A commits (its checksums), then B finds the entry. Forced with events."""
    a_written, a_committed = threading.Event(), threading.Event()
    real_commit = registry.Registry.commit

    def ordered_commit(self, user_id, entry):
        if threading.current_thread().name == "A":
            a_written.set()
            b_written.wait(30)
            out = real_commit(self, user_id, entry)
            a_committed.set()
            return out
        b_written.set()
        a_committed.wait(30)
        return real_commit(self, user_id, entry)

    b_written = threading.Event()
    monkeypatch.setattr(registry.Registry, "commit", ordered_commit)
    plans = {"A": _plan(tmp_path, "A"), "B": _plan(tmp_path, "B")}
    receipts, errors = {}, []

    def publish(tag):
        try:
            if tag == "B":
                a_written.wait(30)   # B writes after A has written, before A commits
            receipts[tag] = publishing.upload(plans[tag], registry.open_registry(rp))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(t,), name=t) for t in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert receipts["A"]["created"] and not receipts["B"]["created"]
    reg = registry.open_registry(rp)
    assert [m["model_id"] for m in reg.models("u1")] == ["u1-m1"]
    for name in ("model.tflite", "labelmap.txt", "lineage.json", "metadata.json"):
        reg.read_file("u1", "u1-m1", name)           # the checksum the index holds
    assert reg.read_json("u1", "u1-m1", "metadata.json")["name"] == "m-A"
    # publishing again is a no-op that still reads back
    again = publishing.upload(_plan(tmp_path, "C"), reg)
    assert not again["created"] and reg.read_json("u1", "u1-m1", "metadata.json")["name"] == "m-A"


def test_concurrent_publishes_free_running(tmp_path, rp):
    """Four publishes of one id at once, no forced order: one entry, every file consistent."""
    plans = [_plan(tmp_path, f"p{i}") for i in range(4)]
    start = threading.Barrier(4)
    out, errors = [], []

    def publish(p):
        try:
            start.wait(30)
            out.append(publishing.upload(p, registry.open_registry(rp)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(r["created"] for r in out) == 1
    reg = registry.open_registry(rp)
    assert len(reg.models("u1")) == 1
    for name in ("model.tflite", "labelmap.txt", "lineage.json", "metadata.json"):
        reg.read_file("u1", "u1-m1", name)
