"""Evaluation inputs: manifests -> evaluation sets, and the baseline from the registry."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from camtune.config import RegistryParams
from camtune.errors import StepFailed
from camtune.evaluation.inputs import eval_set, resolve_baseline
from camtune.registry import open_registry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training_data import LABELS, make_dataset  # noqa: E402


@pytest.fixture
def ds_root(tmp_path):
    return make_dataset(tmp_path / "ds", n=4, unverified=1)  # image 4 unverified


def manifest(tmp_path, ids, source):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"source": str(source), "image_ids": ids}))
    return p


def test_eval_set_keeps_verified_images_and_says_so(tmp_path, ds_root):
    ds, notes = eval_set(manifest(tmp_path, [1, 2, 3, 4], ds_root), LABELS)
    assert sorted(ds.images["id"]) == [1, 2, 3] and "1 unverified" in notes[0]


@pytest.mark.parametrize("ids, message", [([], "evaluation set is empty"), ([1, 99], r"image ids \[99\] are not in"),
                                          ([4], "no verified images")])
def test_eval_set_refuses_bad_manifests(tmp_path, ds_root, ids, message):
    with pytest.raises(StepFailed, match=message):
        eval_set(manifest(tmp_path, ids, ds_root), LABELS)


def test_eval_set_refuses_labels_the_model_does_not_know(tmp_path, ds_root):
    with pytest.raises(StepFailed, match=r"labels the model does not know: \['person'\]"):
        eval_set(manifest(tmp_path, [1, 2, 3], ds_root), [n for n in LABELS if n != "person"])


def publish(reg, tmp_path, model_id, labels, blessed=True):
    files = {}
    for name, data in (("model.tflite", b"tflite-bytes-" + model_id.encode()),
                       ("labelmap.txt", "".join(f"{i} {n}\n" for i, n in enumerate(labels)).encode())):
        src = tmp_path / f"{model_id}-{name}"
        src.write_bytes(data)
        files[name] = reg.put_model_file("u1", model_id, name, src)
    reg.commit("u1", {"model_id": model_id, "blessed": blessed, "files": files})


def test_baseline_is_the_users_last_blessed_model_else_the_base(tmp_path):
    reg = open_registry(RegistryParams(kind="local", root=str(tmp_path / "registry")))
    assert resolve_baseline(reg, "u1", LABELS, tmp_path).name == "base"
    publish(reg, tmp_path, "m1", LABELS)
    publish(reg, tmp_path, "m2", LABELS, blessed=False)  # never published in practice; never a baseline
    b = resolve_baseline(reg, "u1", LABELS, tmp_path / ".")
    assert b.name == "registry:m1" and b.tflite.read_bytes() == b"tflite-bytes-m1"
    publish(reg, tmp_path, "m3", ["person", "car"])  # another label set: not comparable
    b = resolve_baseline(reg, "u1", LABELS, tmp_path)
    assert b.name == "base" and b.tflite is None and "m3" in b.note

