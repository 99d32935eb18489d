"""The paired bootstrap: the fast accumulation equals pycocotools on a resample made explicit
(drawn images duplicated in a COCO gt/dt pair), intervals on cases with a known answer, seeds."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from camtune.metrics import bootstrap

CATS = ["person", "car", "cat"]


def synthetic(n_images=14, seed=0, quantize=None, hit_rate=0.7):
    """gt + detections: each box found with prob hit_rate (jittered), plus false positives;
    `quantize` rounds scores (ties across and within images, as int8 TFLite scores have)."""
    rng = np.random.default_rng(seed)
    images, gts, dts = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": 200, "height": 200, "file_name": f"{i}.jpg"})
        for _ in range(rng.integers(0, 4)):
            x, y, w, h = rng.uniform(0, 120), rng.uniform(0, 120), rng.uniform(8, 70), rng.uniform(8, 70)
            c = int(rng.integers(1, len(CATS) + 1))
            gts.append({"id": len(gts) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                        "area": w * h, "iscrowd": 0})
            if rng.random() < hit_rate:
                j = rng.normal(0, 4, 4)
                dts.append({"image_id": i, "category_id": c, "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]],
                            "score": float(rng.uniform(0.3, 1))})
        for _ in range(rng.integers(0, 3)):
            dts.append({"image_id": i, "category_id": int(rng.integers(1, len(CATS) + 1)),
                        "bbox": [*rng.uniform(0, 150, 2), *rng.uniform(5, 50, 2)],
                        "score": float(rng.uniform(0, 0.9))})
    if quantize:
        for d in dts:
            d["score"] = round(d["score"] * quantize) / quantize
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(CATS)]
    return {"images": images, "annotations": gts, "categories": cats}, dts


def coco(gt_dict, dts):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes([dict(d) for d in dts]) if dts else None
    return gt, dt


def explicit(gt_dict, dts, counts):
    """The resample as a real COCO pair: image i drawn c times becomes c images (ids in order)."""
    images, anns, res = [], [], []
    by_img = {}
    for d in dts:
        by_img.setdefault(d["image_id"], []).append(d)
    for i, im in enumerate(gt_dict["images"]):
        for _ in range(int(counts[i])):
            new = len(images) + 1
            images.append({**im, "id": new})
            for a in gt_dict["annotations"]:
                if a["image_id"] == im["id"]:
                    anns.append({**a, "id": len(anns) + 1, "image_id": new})
            res += [{**d, "image_id": new} for d in by_img.get(im["id"], [])]
    return {"images": images, "annotations": anns, "categories": gt_dict["categories"]}, res


def pycoco_stats(gt, dt):
    ev = COCOeval(gt, dt, iouType="bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # [T, R, K]
    per = {}
    for k, name in enumerate(CATS):
        p = prec[:, :, k]
        per[name] = None if (p < 0).all() else float(p.mean())
    return float(ev.stats[0]), float(ev.stats[1]), per


@pytest.mark.parametrize("quantize", [None, 10])
def test_fast_accumulate_equals_pycocotools_on_explicit_resamples(quantize):
    gt_dict, dts = synthetic(seed=3, quantize=quantize)
    gt, dt = coco(gt_dict, dts)
    m = bootstrap.CocoMatches.from_coco(gt, dt, CATS)
    if quantize:
        assert any(c.tied for c in m.categories)  # the exact path is exercised
    counts = bootstrap.resample_counts(len(gt_dict["images"]), 6, seed=1)
    counts = np.vstack([np.ones(len(gt_dict["images"]), int), counts])
    fast = m.statistics(counts)
    for b, row in enumerate(counts):
        map_, map50, per = pycoco_stats(*coco(*explicit(gt_dict, dts, row)))
        assert fast["map"][b] == pytest.approx(map_, abs=1e-12)
        assert fast["map50"][b] == pytest.approx(map50, abs=1e-12)
        for name in CATS:
            got = fast[f"ap[{name}]"][b]
            assert (np.isnan(got) and per[name] is None) or got == pytest.approx(per[name], abs=1e-12)


def test_identical_models_give_an_interval_at_zero():
    gt_dict, dts = synthetic(n_images=30, seed=5)
    gt, dt = coco(gt_dict, dts)
    a = bootstrap.CocoMatches.from_coco(gt, dt, CATS)
    b = bootstrap.CocoMatches.from_coco(gt, coco(gt_dict, dts)[1], CATS)
    out = bootstrap.paired_draws({"tuned": a, "base": b}, 200, seed=0, key="user")
    delta = out["draws"]["tuned"]["map50"] - out["draws"]["base"]["map50"]
    assert bootstrap.interval(delta, 0.9) == (0.0, 0.0)
    # the models themselves do vary across resamples: the pairing is what cancels it
    lo, hi = bootstrap.interval(out["draws"]["tuned"]["map50"], 0.9)
    assert hi - lo > 0.01


def test_better_on_every_image_gives_an_interval_above_zero():
    gt_dict, dts = synthetic(n_images=30, seed=6, hit_rate=0.5)
    # the better model: every ground-truth box found exactly, at a score above every false positive
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
                "score": 0.95 + 0.04 * (k % 2)} for k, a in enumerate(gt_dict["annotations"])]
    gt, worse = coco(gt_dict, dts)
    better = coco(gt_dict, perfect + [d for d in dts if d["score"] < 0.9])[1]
    out = bootstrap.paired_draws({"tuned": bootstrap.CocoMatches.from_coco(gt, better, CATS),
                                  "base": bootstrap.CocoMatches.from_coco(gt, worse, CATS)},
                                 300, seed=0)
    for stat in ("map50", "map"):
        lo, hi = bootstrap.interval(out["draws"]["tuned"][stat] - out["draws"]["base"][stat], 0.9)
        assert 0 < lo <= hi


def test_threads_give_the_same_draws_as_one():
    gt_dict, dts = synthetic(n_images=40, seed=8, quantize=10)  # ties: the exact path too
    gt, dt = coco(gt_dict, dts)
    m = bootstrap.CocoMatches.from_coco(gt, dt, CATS)
    one = bootstrap.paired_draws({"tuned": m}, 101, seed=3, key="global")
    three = bootstrap.paired_draws({"tuned": m}, 101, seed=3, key="global", workers=3)
    assert one["draws"]["tuned"].keys() == three["draws"]["tuned"].keys()
    for k, v in one["draws"]["tuned"].items():
        np.testing.assert_array_equal(v, three["draws"]["tuned"][k], err_msg=k)
    assert 1 <= bootstrap.default_workers() <= 4


def test_same_seed_same_draws_other_seed_other_draws():
    a = bootstrap.resample_counts(20, 50, seed=4, key="global")
    assert (a == bootstrap.resample_counts(20, 50, seed=4, key="global")).all()
    assert (a != bootstrap.resample_counts(20, 50, seed=5, key="global")).any()
    assert (a != bootstrap.resample_counts(20, 50, seed=4, key="user")).any()
    assert (a.sum(axis=1) == 20).all()


def test_ratio_of_sums_is_sum_over_drawn_images():
    r = bootstrap.RatioOfSums(np.arange(3), {"recall": (np.array([1, 2, 0]), np.array([2, 2, 0]))})
    out = r.statistics(np.array([[1, 1, 1], [2, 0, 1], [0, 0, 3]]))["recall"]
    assert out[0] == pytest.approx(3 / 4) and out[1] == pytest.approx(2 / 4) and np.isnan(out[2])


def test_paired_draws_refuse_models_on_different_images():
    gt_dict, dts = synthetic(n_images=6, seed=2)
    gt, dt = coco(gt_dict, dts)
    a = bootstrap.CocoMatches.from_coco(gt, dt, CATS)
    b = bootstrap.CocoMatches.from_coco(gt, dt, CATS, image_ids=[1, 2, 3])
    with pytest.raises(ValueError, match="different images"):
        bootstrap.paired_draws({"a": a, "b": b}, 10, seed=0)


def test_tied_scores_within_an_image_follow_accumulates_order():
    """Image 1 holds a hit and a miss of the same class at the same score: drawn twice,
    accumulate sees hit, miss, hit, miss (image by image), not hit, hit, miss, miss."""
    box = [10, 10, 40, 40]
    gt_dict = {"images": [{"id": i, "width": 100, "height": 100} for i in (1, 2)],
               "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CATS)],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": box, "area": 1600, "iscrowd": 0},
                               {"id": 2, "image_id": 2, "category_id": 1, "bbox": box, "area": 1600, "iscrowd": 0}]}
    dts = [{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.5},
           {"image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.5},
           {"image_id": 2, "category_id": 1, "bbox": box, "score": 0.4}]
    m = bootstrap.CocoMatches.from_coco(*coco(gt_dict, dts), CATS)
    assert m.categories[0].tied
    counts = np.array([[2, 0], [2, 1], [1, 1]])
    fast = m.statistics(counts)["ap50[person]"]
    for b, row in enumerate(counts):
        ev = COCOeval(*coco(*explicit(gt_dict, dts, row)), iouType="bbox")
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
        assert fast[b] == pytest.approx(ev.eval["precision"][0, :, 0, 0, -1].mean(), abs=1e-12)
