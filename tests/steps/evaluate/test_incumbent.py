"""The tuned model against the incumbent (docs/incumbent.md).

`compare` is exercised on Frigate-path runs whose detections are planted (who finds which object,
on which camera), through the real scoring, bootstrap and checks; then `evaluate` end to end with a
real TFLite incumbent (the pipeline's own export) from a file with Frigate's stock 90-entry COCO
label map and from the registry with a lineage, the base and tuned models stood in as in
test_regate (jittered ground truth), so no checkpoint runs here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from camtune.contracts import artifacts
from camtune.core.config import GateParams
from camtune.steps.evaluate import evaluate
from camtune.metrics import frigate_path
from camtune.steps.evaluate.incumbent import camera_rows, compare, markdown
from camtune.steps.evaluate.run import with_incumbent
from camtune.model import regions as R
from camtune.model.incumbent import Incumbent
from tests.support.incumbent import COCO90, publish_incumbent, write_coco_labelmap

GATE = GateParams(resamples=300, seed=1, min_images=5)
NAMES = ["person", "face", "car"]
ATTRS = ["face"]


def _runs(cameras: dict[str, tuple[int, float]], seed: int, start: int = 0, extra=()) -> list[frigate_path.ImageRun]:
    """Per camera (images, share of objects found): one person (and one face) per image, each in
    its own region; found objects get a detection on their box. `extra`: (label, score) detections
    added to every image at a free spot (false detections of that label)."""
    rng = np.random.default_rng(seed)
    out, iid = [], start
    for cam, (n, found) in cameras.items():
        for _ in range(n):
            iid += 1
            box, face = (100.0, 50.0, 180.0, 250.0), (120.0, 60.0, 150.0, 90.0)
            region = (0, 0, 320, 320)
            raw = [R.Detection("person", 0.9, (100, 50, 180, 250), region)] if rng.random() < found else []
            raw += [R.Detection(l, s, (250, 250, 300, 300), region) for l, s in extra]
            out.append(frigate_path.ImageRun(iid, cam, (360, 640), [("person", box), ("face", face)], [region], raw))
    return out


def _inc(labels=("person", "car"), lineage=()) -> Incumbent:
    return Incumbent("file:stock.tflite", "file", "stock.tflite", tuple(labels), frozenset(lineage))


def _compare(tuned_cams, inc_cams, g=GATE, **kw):
    user_t, user_i = _runs(tuned_cams, 1), _runs(inc_cams, 2)
    glob_t, glob_i = _runs({"g": (30, 0.8)}, 3, 1000), _runs({"g": (30, 0.8)}, 3, 1000)
    return compare(kw.get("incumbent", _inc()), {"user": user_t, "global": glob_t},
                   {"user": user_i, "global": glob_i}, NAMES, ATTRS, {"person": 0.5, "car": 0.5, "face": 0.5},
                   g, 0.05)


def test_better_than_the_incumbent_is_not_worse_and_promoted():
    s = _compare({"a": (20, 0.95), "b": (20, 0.95)}, {"a": (20, 0.4), "b": (20, 0.4)})
    assert s["verdict"] == "not_worse" and s["worse_cameras"] == []
    checks = {c["name"]: c for c in s["checks"]}
    assert checks["incumbent_user_recall"]["verdict"] == "passed" and checks["incumbent_user_recall"]["point"] > 0.4
    # the recall tolerance 0.1 less the fidelity margin 0.05
    assert checks["incumbent_user_recall"]["threshold"] == pytest.approx(-0.05)
    assert set(s["cameras"]) == {"a", "b"}
    cam = s["cameras"]["a"]
    assert cam["images"] == 20 and cam["tuned"]["recall"] > cam["incumbent"]["recall"]
    lo, hi = cam["tuned"]["recall_interval"]
    assert lo <= cam["tuned"]["recall"] <= hi and cam["incumbent"]["false_per_100_regions"] == 0
    gate = with_incumbent({"verdict": "blessed", "blessed": True, "summary": "better"}, s)
    assert gate["promote"] is True and gate["summary"] == "better"


def test_worse_than_the_incumbent_is_not_promoted_and_says_why():
    s = _compare({"a": (20, 0.3), "b": (20, 0.3)}, {"a": (20, 0.95), "b": (20, 0.95)})
    assert s["verdict"] == "worse" and "incumbent_user_recall" in s["failed"]
    assert s["worse_cameras"] == ["a", "b"]
    gate = with_incumbent({"verdict": "blessed", "blessed": True, "summary": "better than the base"}, s)
    assert gate["promote"] is False and "worse than the incumbent file:stock.tflite" in gate["promotion"]
    assert "Against the incumbent file:stock.tflite: measurably worse" in gate["summary"]
    assert "worse on cameras a, b" in gate["summary"]


def test_one_worse_camera_blocks_promotion_only_when_the_param_says_so():
    # camera a: the tuned model finds everything, the incumbent 60%; camera b: the reverse and worse
    tuned, inc = {"a": (60, 1.0), "b": (15, 0.0)}, {"a": (60, 0.6), "b": (15, 1.0)}
    s = _compare(tuned, inc)
    overall = {c["name"]: c for c in s["checks"]}
    assert overall["incumbent_user_recall"]["verdict"] != "failed"
    assert s["worse_cameras"] == ["b"] and s["verdict"] == "worse"
    assert "camera b" in s["summary"] and "incumbent_camera_blocks" in s["summary"]
    relaxed = _compare(tuned, inc, GATE.model_copy(update={"incumbent_camera_blocks": False}))
    assert relaxed["verdict"] == "not_worse" and relaxed["worse_cameras"] == ["b"]
    assert "worse on camera b" in relaxed["summary"] and "not blocking" in relaxed["summary"]
    rows = {r["where"]: r for r in camera_rows(s)}
    assert rows["camera b"]["worse"] and rows["camera b"]["recall_verdict"] == "failed"
    assert rows["camera b"]["tuned_recall"] == "0%" and rows["camera b"]["incumbent_recall"] == "100%"
    md = "\n".join(markdown(s))
    assert "| camera b **(worse)** | 15 |" in md and "worse camera: b" in md


def test_equal_models_are_inconclusive_not_worse():
    s = _compare({"a": (12, 0.7)}, {"a": (12, 0.7)})
    assert s["verdict"] == "inconclusive" and s["summary"].startswith("too little evidence")
    gate = with_incumbent({"verdict": "blessed", "blessed": True, "summary": "x"}, s)
    assert gate["promote"] is False and gate["promotion"].startswith("inconclusive against the incumbent")


def test_lineage_images_and_unknown_labels_are_left_out():
    # the incumbent knows person but not face; its "bicycle" detections are not ours either
    user_t = _runs({"a": (20, 0.9)}, 1)
    user_i = _runs({"a": (20, 0.9)}, 1, extra=[("bicycle", 0.9), ("face", 0.9)])
    trained_on = [r.image_id for r in user_t[:7]]
    s = compare(_inc(labels=COCO90, lineage=trained_on + [99999]), {"user": user_t, "global": user_t},
                {"user": user_i, "global": user_i}, NAMES, ATTRS, {"person": 0.5}, GATE, 0.05)
    assert s["holdout_images"] == 20 and s["holdout_in_lineage"] == 7
    assert s["holdout_in_lineage_ids"] == sorted(trained_on)
    assert s["sets"]["user"]["images"] == 13 and s["sets"]["global"]["images"] == 20
    assert s["labels_compared"] == ["person", "car"]
    assert s["labels_left_out"]["not_in_incumbent"] == ["face"] and "bicycle" in s["labels_left_out"]["not_ours"]
    # same person detections, the rest left out: not a single false detection on either side
    assert s["sets"]["user"]["incumbent"]["false_per_100_regions"] == 0
    assert s["sets"]["user"]["incumbent"]["recall"] == s["sets"]["user"]["tuned"]["recall"]


# ---------------------------------------------------------------- evaluate, end to end

QUALITY = {"train_base": (0.6, 0.6), "finetune": (0.9, 0.1)}


def _stand_ins(names, attrs):
    """predict / Frigate-path stand-ins for the two checkpoints (jittered ground truth); the
    incumbent TFLite runs for real through evaluate's own Frigate path."""
    from camtune.metrics.score import frigate_here as _frigate_here

    def found(ds, stage, seed):
        rng = np.random.default_rng(seed)
        keep, false = QUALITY[stage]
        out = {}
        for im in ds.images.itertuples():
            anns = ds.annotations[ds.annotations["image_id"] == im.id]
            f = [(a.label, (a.x, a.y, a.x + a.w, a.y + a.h)) for a in anns.itertuples() if rng.random() < keep]
            out[int(im.id)] = [(str(l), tuple(float(v) for v in b), float(rng.uniform(0.5, 0.95))) for l, b in f]
        return out

    def predict(kind, model, ds):
        f = found(ds, model.parent.name, len(ds.images))
        size = {int(i.id): (i.width, i.height) for i in ds.images.itertuples()}
        return {i: {"boxes": [[y0 / size[i][1], x0 / size[i][0], y1 / size[i][1], x1 / size[i][0]]
                              for _, (x0, y0, x1, y1), _ in d],
                    "classes": [names.index(l) for l, _, _ in d], "scores": [s for _, _, s in d]}
                for i, d in f.items()}

    real = _frigate_here(names, attrs, 2)

    def frigate(kind, model, ds, labels=None):
        if kind == "tflite":
            return real(kind, model, ds, labels=labels)
        f = found(ds, model.parent.name, len(ds.images) + 1)
        runs = frigate_path.set_regions(ds, 320, attrs)
        for r in runs:
            r.raw = [R.Detection(l, s, tuple(int(v) for v in b), r.regions[0]) for l, b, s in f[r.image_id]]
        return runs
    return predict, frigate


@pytest.fixture
def stage_inputs(stage_workspace):
    return stage_workspace(10, **{"evaluate.gate.min_images": 5})


def test_evaluate_scores_a_real_tflite_incumbent_next_to_base_and_tuned(stage_inputs, export_run, tmp_path):
    params, holdout = stage_inputs
    names, attrs = list(params.labels.names), list(params.labels.attribute_parents)
    predict, frigate = _stand_ins(names, attrs)

    # 1. a first model: nothing to compare with, and the report says so
    out = evaluate(params, artifacts.EVALUATE_DIR, predict=predict, frigate=frigate)
    gate = json.loads(artifacts.GATE.read_text())
    assert gate["incumbent"]["verdict"] == "none" and "first model" in gate["incumbent"]["summary"]
    assert gate["baseline"] == "base" and out.incumbent["verdict"] == "none"
    assert "first model" in artifacts.EVALUATION_REPORT.read_text()

    # 2. Frigate's stock model stood in by the pipeline's own export with the 90-entry COCO label map
    lm = write_coco_labelmap(tmp_path / "stock/labelmap.txt")
    stock = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={
        "incumbent": params.evaluate.incumbent.model_copy(update={
            "source": "file", "model": str(export_run.out / "model.tflite"), "labelmap": str(lm)})})})
    out = evaluate(stock, artifacts.EVALUATE_DIR, predict=predict, frigate=frigate)
    gate = json.loads(artifacts.GATE.read_text())
    inc = gate["incumbent"]
    assert inc["name"] == f"file:{export_run.out / 'model.tflite'}" and inc["labels_compared"] == [
        "person", "car", "dog", "cat"]
    assert inc["labels_left_out"]["not_in_incumbent"] == ["face", "license_plate", "amazon", "ups", "fedex",
                                                          "package", "deer"]
    assert inc["verdict"] in ("not_worse", "worse", "inconclusive") and inc["holdout_in_lineage"] == 0
    assert {c["name"] for c in inc["checks"]} == {"incumbent_user_recall", "incumbent_user_false",
                                                  "incumbent_global_recall", "incumbent_global_false"}
    assert inc["cameras"] and all({"tuned", "incumbent", "checks"} <= set(v) for v in inc["cameras"].values())
    assert isinstance(gate["promote"], bool) and gate["promotion"]
    # an untrained export finds next to nothing: the tuned stand-in (90% found) is not worse
    assert inc["sets"]["user"]["tuned"]["recall"] > inc["sets"]["user"]["incumbent"]["recall"]
    assert inc["verdict"] == "not_worse", json.dumps(inc["checks"], indent=1)
    runs = json.loads(artifacts.FRIGATE_RUNS.read_text())
    assert set(runs) == {"base", "tuned", "incumbent"} and len(runs["incumbent"]["user"]) == len(holdout)
    report = artifacts.EVALUATION_REPORT.read_text()
    assert "## Against the incumbent" in report and "left out, the incumbent does not know them: face" in report
    # regate (gate_scenarios' bootstrap salts) draws the incumbent comparison again too: the same
    # params reproduce the stage's section, another seed gives other intervals on the same points
    g = stock.evaluate.gate
    assert json.loads(json.dumps(out.regate(g)["incumbent"])) == inc
    other = out.regate(g.model_copy(update={"seed": g.seed + 1000}))["incumbent"]
    same = {c["name"]: c for c in inc["checks"]}
    assert {c["name"] for c in other["checks"]} == set(same)
    assert all(c["point"] == same[c["name"]]["point"] for c in other["checks"])
    assert any(c["interval"] != same[c["name"]]["interval"] for c in other["checks"])

    # 3. the user's current model from the registry: it trained on 4 of the holdout images
    from camtune.contracts.registry import open_registry

    reg = open_registry(params.publish.registry)
    publish_incumbent(reg, params.user.id, "m1", export_run.out / "model.tflite", names, holdout[:4],
                      tmp=tmp_path / "stage")
    evaluate(params, artifacts.EVALUATE_DIR, predict=predict, frigate=frigate)
    inc = json.loads(artifacts.GATE.read_text())["incumbent"]
    assert inc["name"] == "registry:m1" and inc["holdout_in_lineage"] == 4
    assert inc["sets"]["user"]["images"] == len(holdout) - 4 and inc["labels_left_out"]["not_in_incumbent"] == []
    assert "left out of this comparison: 4 of 12" in artifacts.EVALUATION_REPORT.read_text()
