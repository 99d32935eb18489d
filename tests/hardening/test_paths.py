"""One checked path resolver for every reader of dataset files (issue 28, item 8): the CVAT and
Label Studio exports, suggest, the dataset's image_path (train_base, evaluate, export) and the
training records' file checks (the global pool is never run through validate)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from camtune.core import config
from camtune.core.dataset import UnsafePath, load_dataset, safe_image_path
from camtune.steps.ingest import IngestError, load_coco
from camtune.steps.ingest import cvat, label_studio, tool_files
from camtune.model.detections import predictions
from camtune.model.images import ImageRefused, Limits
from camtune.training import records

from tests.steps.ingest.builders import write_verified_dataset

from .hostile_images import png_claiming


@pytest.fixture
def params(tmp_path):
    return config.load(config.ROOT / "params.yaml", {"data.user_dataset": str(tmp_path / "user")})


def _dataset_with(tmp_path, params, file_name: str, verified: bool = False):
    root = tmp_path / "user"
    write_verified_dataset(root, params)
    coco = json.loads((root / "annotations.json").read_text())
    coco["images"].append({"id": 9, "file_name": file_name, "width": 20, "height": 10, "user_id": params.user.id,
                           "camera": "x", "captured_at": "2026-01-01T00:00:00Z", "verified": verified,
                           "verified_at": "2026-01-02T00:00:00Z" if verified else None})
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def _outside(tmp_path):
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (20, 10)).save(secret)
    return secret


def _cases(tmp_path):
    secret = _outside(tmp_path)
    return {"absolute": str(secret), "dotdot": "../elsewhere/secret.png", "symlink": "images/link.png"}


@pytest.mark.parametrize("case", ["absolute", "dotdot", "symlink"])
def test_exports_refuse_files_outside_the_dataset(tmp_path, params, case):
    name = _cases(tmp_path)[case]
    root = _dataset_with(tmp_path, params, name)
    os.symlink(tmp_path / "elsewhere" / "secret.png", root / "images" / "link.png")
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(root, names, parents)
    images = tool_files.selection(coco, None)
    with pytest.raises(IngestError, match=r"image 9: .*(absolute path|contains '\.\.'|resolves outside)"):
        cvat.write_cvat_export(root, coco, images, tmp_path / "cvat", names, parents)
    assert not (tmp_path / "cvat").exists()
    with pytest.raises(IngestError, match="image 9: "):
        label_studio.write_ls_export(root, coco, images, None, tmp_path / "ls", model_version="m", url_prefix="/d?d=",
                              document_root="/", label_names=names, attribute_parents=parents)
    # the dataset's image_path (train_base, evaluate, export read through it) refuses it too
    with pytest.raises(UnsafePath):
        load_dataset(root, check_schema=False).image_path(name)


class _NoDetections:
    def predict(self, batch):
        return [{"boxes": np.zeros((0, 4)), "classes": np.zeros(0), "scores": np.zeros(0)} for _ in batch]


@pytest.mark.parametrize("case", ["absolute", "dotdot", "symlink"])
def test_suggest_never_reads_outside_and_names_what_it_skipped(tmp_path, params, case):
    import pandas as pd

    name = _cases(tmp_path)[case]
    root = _dataset_with(tmp_path, params, name)
    os.symlink(tmp_path / "elsewhere" / "secret.png", root / "images" / "link.png")
    rows = pd.DataFrame([{"id": 7, "file_name": "images/keep.png"}, {"id": 9, "file_name": name}])
    skipped = []
    got = [r.id for r, _ in predictions(root, rows, _NoDetections(), Limits(), skipped)]
    assert got == [7] and [s["image_id"] for s in skipped] == [9] and name in skipped[0]["reason"]
    with pytest.raises(UnsafePath):
        list(predictions(root, rows, _NoDetections()))


def test_training_records_check_pool_files_like_validate(tmp_path, params):
    """A verified pool image whose header claims 13000x13000 is refused before training reads it."""
    root = _dataset_with(tmp_path, params, "images/bomb.png", verified=True)
    (root / "images" / "bomb.png").write_bytes(png_claiming(13000, 13000))
    ds = load_dataset(root)
    with pytest.raises(ImageRefused, match=r"image 9 .*bomb.png.*exceeds validate.max_pixels=40000000"):
        list(records._examples([records.Part(ds)], list(params.labels.names), Limits.of(params.validate)))
    assert safe_image_path(root, "images/keep.png") == root / "images" / "keep.png"
