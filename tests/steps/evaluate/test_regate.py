"""`Evaluation.regate`: the gate re-judged on the same detections (another bootstrap seed, other
thresholds) must cover every check the stage judged, the Frigate-path ones included, and give the
stage's own gate.json back for the stage's own gate params. The models' outputs are stood in by
jittered ground truth (COCO path) and by jittered ground truth inside Frigate's real regions
(Frigate path), so no model runs here."""
from __future__ import annotations

import json

import numpy as np

from camtune.contracts import artifacts
from camtune.steps.evaluate import evaluate
from camtune.metrics import frigate_path
from camtune.model import regions as R

QUALITY = {"train_base": (0.6, 0.6), "finetune": (0.9, 0.1)}   # share of objects found, false per image


def _boxes(ds, stage, rng):
    keep, false = QUALITY[stage]
    out = {}
    for im in ds.images.itertuples():
        anns = ds.annotations[ds.annotations["image_id"] == im.id]
        found = [(a.label, (a.x, a.y, a.x + a.w, a.y + a.h)) for a in anns.itertuples() if rng.random() < keep]
        for _ in range(rng.poisson(false)):
            x, y = rng.uniform(0, 0.6, 2) * (im.width, im.height)
            found.append((str(ds.annotations["label"].iloc[0]), (x, y, x + 60, y + 60)))
        out[int(im.id)] = [(str(l), tuple(float(v) for v in b), float(rng.uniform(0.45, 0.95))) for l, b in found]
    return out


def test_regate_reproduces_the_stage_gate_and_rejudges_the_frigate_checks(tmp_path, stage_workspace):
    params, _ = stage_workspace(20)
    names, attrs = list(params.labels.names), list(params.labels.attribute_parents)

    def seed(model, ds):
        return sum(map(ord, model.parent.name)) * 1000 + len(ds.images)

    def predict(kind, model, ds):
        found = _boxes(ds, model.parent.name, np.random.default_rng(seed(model, ds)))
        sizes = {int(i.id): (i.width, i.height) for i in ds.images.itertuples()}
        return {i: {"boxes": [[y0 / sizes[i][1], x0 / sizes[i][0], y1 / sizes[i][1], x1 / sizes[i][0]]
                              for _, (x0, y0, x1, y1), _ in f],
                    "classes": [names.index(l) for l, _, _ in f], "scores": [s for _, _, s in f]}
                for i, f in found.items()}

    def frigate(kind, model, ds):
        found = _boxes(ds, model.parent.name, np.random.default_rng(seed(model, ds) + 1))
        runs = frigate_path.set_regions(ds, 320, attrs)
        for r in runs:
            r.raw = [R.Detection(l, s, tuple(int(v) for v in b), r.regions[0]) for l, b, s in found[r.image_id]]
        return runs

    out = evaluate(params, artifacts.EVALUATE_DIR, predict=predict, frigate=frigate)
    stage = json.loads(artifacts.GATE.read_text())
    names_judged = {c["name"] for c in stage["checks"]}
    assert {"frigate_user_floor", "user_gain", "global_drop"} <= names_judged

    again = json.loads(json.dumps(out.regate(params.evaluate.gate)))
    assert again["verdict"] == stage["verdict"]
    assert again["checks"] == stage["checks"]

    other = out.regate(params.evaluate.gate.model_copy(update={"seed": params.evaluate.gate.seed + 1000}))
    assert {c["name"] for c in other["checks"]} == names_judged
    floor = {c["name"]: c for c in other["checks"]}["frigate_user_floor"]
    assert floor["interval"] != {c["name"]: c for c in stage["checks"]}["frigate_user_floor"]["interval"]
