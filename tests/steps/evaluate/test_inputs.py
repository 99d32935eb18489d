"""Evaluation inputs: manifests -> evaluation sets (the incumbent: tests/model/test_incumbent.py)."""
from __future__ import annotations

import json

import pytest

from camtune.core.errors import StepFailed
from camtune.steps.evaluate.inputs import eval_set

from tests.support.training_data import LABELS, make_dataset


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
