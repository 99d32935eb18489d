"""The new-data rule against a real local registry written through camtune.contracts.registry."""
from __future__ import annotations

import json

import pandas as pd

from camtune.core.config import RegistryParams
from camtune.contracts.registry import open_registry
from camtune.steps.validate import check_lineage as check_lineage_step, prepare
from camtune.core.config import ValidateParams
from camtune.steps.validate.lineage import check_lineage, previous_lineage

from .builders import USER, make_dataset


def images(n, camera=lambda i: "cam_a", condition=lambda i: "day", verified=lambda i: True, user=USER):
    return pd.DataFrame({"id": range(1, n + 1), "user_id": [user] * n, "verified": [verified(i) for i in range(n)],
                         "camera": [camera(i) for i in range(n)], "condition": [condition(i) for i in range(n)]})


def publish_lineage(registry_root, model_id, image_ids, tmp_path):
    reg = open_registry(RegistryParams(kind="local", root=str(registry_root)))
    src = tmp_path / f"lineage-{model_id}.json"
    src.write_text(json.dumps({"model_id": model_id, "image_ids": image_ids}))
    info = reg.put_model_file(USER, model_id, "lineage.json", src)
    reg.commit(USER, {"model_id": model_id, "files": {"lineage.json": info}})


def rules(**kw):
    return ValidateParams(**{"min_new_verified": 10, "warn_min_per_camera": 5, **kw})


def test_first_model_counts_every_verified_image():
    findings, counts = check_lineage(images(10, condition=lambda i: "dn"[i % 2]), USER, rules(), None)
    assert findings == [] and counts["new_verified"] == 10 and counts["first_model"]


def test_nine_new_verified_images_are_too_few():
    findings, counts = check_lineage(images(12, verified=lambda i: i < 9, condition=lambda i: "dn"[i % 2]), USER,
                                     rules(), None)
    assert [f.rule for f in findings] == ["TOO_FEW_NEW"] and counts["new_verified"] == 9
    assert "9 new verified" in findings[0].message
    assert findings[0].data == {"new_verified": 9, "min_new_verified": 10, "previous_model": None}


def test_other_users_images_do_not_count():
    imgs = pd.concat([images(9), images(5, user="other").assign(id=range(100, 105))])
    findings, _ = check_lineage(imgs, USER, rules(warn_min_per_camera=0), None)
    assert "TOO_FEW_NEW" in [f.rule for f in findings]


def test_images_in_the_previous_model_are_not_new():
    imgs = images(15, condition=lambda i: "dn"[i % 2])
    findings, counts = check_lineage(imgs, USER, rules(), {"model_id": "m1", "image_ids": [1, 2, 3, 4, 5, 6]})
    assert counts["new_verified"] == 9 and counts["in_previous_model"] == 6
    assert [f.rule for f in findings] == ["TOO_FEW_NEW"] and "m1" in findings[0].message
    findings, _ = check_lineage(imgs, USER, rules(), {"model_id": "m1", "image_ids": [1, 2, 3, 4, 5]})
    assert findings == []


def test_camera_warnings():
    imgs = images(12, camera=lambda i: "cam_a" if i < 9 else "cam_b",
                  condition=lambda i: "day" if i >= 9 else "dn"[i % 2])
    findings, counts = check_lineage(imgs, USER, rules(), None)
    got = sorted((f.rule, f.severity) for f in findings)
    assert got == [("FEW_PER_CAMERA", "warning"), ("SINGLE_CONDITION", "warning")]
    assert all("cam_b" in f.message for f in findings)
    data = {f.rule: f.data for f in findings}
    assert data == {"FEW_PER_CAMERA": {"camera": "cam_b", "verified": 3, "minimum": rules().warn_min_per_camera},
                    "SINGLE_CONDITION": {"camera": "cam_b", "conditions": ["day"]}}
    assert counts["per_camera"] == {"cam_a": 9, "cam_b": 3}


def test_reads_the_newest_model_of_a_real_registry(tmp_path, params_for):
    reg_root = tmp_path / "registry"
    assert previous_lineage(RegistryParams(kind="local", root=str(reg_root)), USER) is None
    publish_lineage(reg_root, "m1", list(range(1, 13)), tmp_path)
    publish_lineage(reg_root, "m2", [1, 2, 3], tmp_path)   # newest last: only this one counts
    root = tmp_path / "ds"
    make_dataset(root, n_images=12)
    # these entries hold a lineage only: as an incumbent m2 would be an error (tests/model/test_incumbent.py)
    result = check_lineage_step(prepare(params_for(root, **{"evaluate.incumbent.source": "none"})))
    assert [f.rule for f in result.findings] == ["TOO_FEW_NEW"]
    assert result.details["new_verified"] == 9 and result.details["previous_model"] == "m2"
    result = check_lineage_step(prepare(params_for(root)))
    assert [f.rule for f in result.findings] == ["TOO_FEW_NEW", "INCUMBENT_UNUSABLE"]
    assert "model 'm2' of user" in result.findings[1].message and "has no model.tflite" in result.findings[1].message


def test_corrupt_registry_is_an_error_not_a_first_model(tmp_path, params_for):
    index = tmp_path / "registry" / "users" / USER / "index.json"
    index.parent.mkdir(parents=True)
    index.write_text("{broken")
    root = tmp_path / "ds"
    make_dataset(root, n_images=12)
    result = check_lineage_step(prepare(params_for(root)))
    assert [f.rule for f in result.findings] == ["REGISTRY_UNREADABLE"]
