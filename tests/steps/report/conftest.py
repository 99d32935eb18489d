"""Report test inputs: the stage outputs laid out as `dvc repro` leaves them, built from the
session's synthetic sample datasets with the real validate, COCO-eval, gate and threshold code.
The detections stand for a trained model's (a jittered copy of the ground truth: most boxes for
"tuned", fewer plus false ones for "base"), so no training runs here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from camtune.core import atomic
from camtune.core.config import ROOT

PARAMS = str(ROOT / "params.yaml")


class AuditDetector:
    """The audit's reference model: sees one extra `dog` in the top-left corner of every image."""

    def predict(self, images):
        return [{"boxes": [[0.02, 0.02, 0.2, 0.15]], "classes": [8], "scores": [0.9]} for _ in images]


def _detections(ds, names, rng, keep: float, jitter: float, false_per_image: float) -> dict:
    out = {}
    by_image = dict(tuple(ds.annotations.groupby("image_id"))) if len(ds.annotations) else {}
    for im in ds.images.itertuples():
        W, H = float(im.width), float(im.height)
        boxes, classes, scores = [], [], []
        anns = by_image.get(im.id)
        for a in ([] if anns is None else anns.itertuples()):
            if rng.random() > keep:
                continue
            dx, dy = rng.normal(0, jitter, 2) * [a.w, a.h]
            boxes.append([(a.y + dy) / H, (a.x + dx) / W, (a.y + dy + a.h) / H, (a.x + dx + a.w) / W])
            classes.append(names.index(a.label))
            scores.append(float(rng.uniform(0.55, 0.97)))
        for _ in range(rng.poisson(false_per_image)):
            y, x = rng.uniform(0, 0.7, 2)
            boxes.append([y, x, y + 0.25, x + 0.2])
            classes.append(int(rng.integers(0, len(names))))
            scores.append(float(rng.uniform(0.5, 0.9)))
        out[int(im.id)] = {"boxes": boxes, "classes": classes, "scores": scores}
    return out


def write_evaluate(params, names) -> dict:
    """artifacts/evaluate written by the real `camtune.steps.evaluate.evaluate` (COCOeval, bootstrap
    gate, advice, detections/), with the models' predictions stood in by jittered ground truth."""
    from camtune.contracts import artifacts
    from camtune.steps.evaluate import evaluate

    quality = {"train_base": (0.55, 0.08, 0.8), "finetune": (0.9, 0.03, 0.2)}  # keep, jitter, false/image
    for model_dir in (artifacts.BASE_MODEL, artifacts.TUNED_MODEL):
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "labels.json").write_text(json.dumps({"names": names}))

    def predict(kind, model, ds):
        stage = Path(model).parent.name
        seed = sum(map(ord, stage)) * 1000 + len(ds.images)
        return _detections(ds, names, np.random.default_rng(seed), *quality[stage])

    result = evaluate(params, artifacts.EVALUATE_DIR, predict=predict)
    return json.loads(artifacts.GATE.read_text()) if result else {}


@pytest.fixture
def run_dir(tmp_path, sample_datasets, tiny_tflite, monkeypatch):
    """A working directory with every stage's outputs for a run that passed validation, has no
    registry baseline and skipped the Edge TPU compile. Returns (params, path)."""
    from camtune.core import config
    from camtune.steps import validate as validation
    from camtune.core.dataset import load_dataset
    from camtune.steps.export.compiler import compile_or_skip

    monkeypatch.chdir(tmp_path)
    overrides = {"data.user_dataset": str(sample_datasets.user), "data.global_pool": str(sample_datasets.global_pool),
                 "publish.registry.root": str(tmp_path / "registry"), "validate.reference_model": "reference.tflite",
                 "validate.min_new_verified": 1,
                 # predictions are stood in per image (below); the Frigate path runs a real
                 # detector on crops, which these fixtures do not have
                 "evaluate.frigate_path.enabled": False}
    params = config.load(PARAMS, overrides)
    names = list(params.labels.names)
    validation.validate(params, detector=AuditDetector()).write(tmp_path / "artifacts/validate")

    user_id = params.user.id
    pool = load_dataset(sample_datasets.global_pool)
    others = pool.images[(pool.images["user_id"] != user_id) & pool.images["verified"]]
    user = load_dataset(sample_datasets.user).of_user(user_id).verified()
    atomic.write_json(tmp_path / "artifacts/sample/global_eval.json",
                      {"name": "global_eval", "source": str(sample_datasets.global_pool), "user_id": user_id,
                       "image_ids": sorted(int(i) for i in others["id"][:16])})
    atomic.write_json(tmp_path / "artifacts/finetune/holdout.json",
                      {"user_id": user_id, "source": str(sample_datasets.user),
                       "image_ids": sorted(int(i) for i in user.images["id"][:12])})
    write_evaluate(params, names)

    export = tmp_path / "artifacts/export"
    export.mkdir(parents=True)
    (export / "model.tflite").write_bytes(tiny_tflite.read_bytes())
    (export / "labelmap.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    edgetpu = compile_or_skip(export / "model.tflite", tmp_path / "edgetpu", compiler=None, timeout_s=1)
    atomic.write_json(export / "export.json", {"model": "model.tflite", "labels": names, "edgetpu": edgetpu})
    return params, tmp_path


def failed_dataset(src, dest) -> dict:
    """A copy of the user dataset with errors a user makes: an orphan face, a box outside its
    image, a missing file. Returns the ids involved."""
    import shutil

    shutil.copytree(src, dest)
    path = dest / "annotations.json"
    data = json.loads(path.read_text())
    cats = {c["name"]: c["id"] for c in data["categories"]}
    with_person = {a["image_id"]: a for a in data["annotations"] if a["category_id"] == cats["person"]}
    orphan = next(i for i in data["images"] if i["verified"] and i["id"] in with_person)
    imgs = [i for i in data["images"] if i["verified"] and i["id"] != orphan["id"]]
    next_id = max(a["id"] for a in data["annotations"]) + 1
    outside = imgs[0]
    px = with_person[orphan["id"]]["bbox"][0]
    # a face on the other half of the frame from the person: inside no person box
    fx = 5 if px > orphan["width"] / 2 else orphan["width"] - 30
    data["annotations"].append({"id": next_id, "image_id": orphan["id"], "category_id": cats["face"],
                                "bbox": [fx, 5, 20, 20], "area": 400.0, "iscrowd": 0})
    data["annotations"].append({"id": next_id + 1, "image_id": outside["id"], "category_id": cats["car"],
                                "bbox": [outside["width"] - 40, 10, 120, 60], "area": 7200.0, "iscrowd": 0})
    missing = imgs[1]
    (dest / missing["file_name"]).unlink()
    path.write_text(json.dumps(data))
    return {"orphan": (orphan["id"], next_id), "outside": (outside["id"], next_id + 1), "missing": missing["id"]}
