"""Cost of the gate's paired bootstrap: seconds per 1,000 resamples (both models, every statistic:
mAP, mAP@.5, per-class AP) on evaluation sets the size of the defaults and on a 5,000-image
global set. Goal: under 10 s per 1,000 resamples of 5,000 images on 2 cores. Each row is timed with
one thread and with the evaluate step's thread count (`bootstrap.default_workers()`), side by side.

    python benchmarks/gate_bootstrap.py [--resamples 1000] [--sizes 15 80 5000] [--dets 10]

Sets are synthetic COCO pairs (11 labels like params.yaml's, 0-3 boxes per image, a detector that
finds most of them plus false positives, up to `--dets` detections per image), matched once with
pycocotools; "float" scores are continuous (a checkpoint), "int8" scores are quantized to 1/256
(a TFLite model: ties, so some categories take the exact path). Also prints pycocotools'
own evaluate+accumulate on the set once, for scale.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from camtune.metrics import bootstrap  # noqa: E402

LABELS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog", "cat", "deer"]


def synthetic(n: int, seed: int, dets: int, quantize: bool):
    rng = np.random.default_rng(seed)
    images, gts, res = [], [], []
    for i in range(1, n + 1):
        images.append({"id": i, "width": 640, "height": 360})
        k = 0
        for _ in range(rng.integers(0, 4)):
            x, y, w, h = rng.uniform(0, 500), rng.uniform(0, 250), rng.uniform(10, 120), rng.uniform(10, 100)
            c = int(rng.integers(1, len(LABELS) + 1))
            gts.append({"id": len(gts) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                        "area": w * h, "iscrowd": 0})
            if rng.random() < 0.75 and k < dets:
                j = rng.normal(0, 5, 4)
                res.append({"image_id": i, "category_id": c, "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]],
                            "score": float(rng.uniform(0.3, 1))})
                k += 1
        while k < dets and rng.random() < 0.7:
            res.append({"image_id": i, "category_id": int(rng.integers(1, len(LABELS) + 1)),
                        "bbox": [*rng.uniform(0, 500, 2), *rng.uniform(5, 80, 2)], "score": float(rng.uniform(0, 0.8))})
            k += 1
    if quantize:
        for r in res:
            r["score"] = round(r["score"] * 256) / 256
    return {"images": images, "annotations": gts,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(LABELS)]}, res


def matches(gt_dict, res):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(res)
        t = time.perf_counter()
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        once = time.perf_counter() - t
    return bootstrap.CocoMatches.from_evaluated(ev, LABELS), once


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--sizes", type=int, nargs="+", default=[15, 80, 5000],
                   help="images per set (defaults: ~15 user holdout, ~80 global eval; 5000: a large global set)")
    p.add_argument("--dets", type=int, default=10, help="at most this many detections per image")
    a = p.parse_args(argv)
    workers = bootstrap.default_workers()
    print(f"{'images':>7} {'scores':>6} {'dets':>7} {'tied cats':>9} {'pycocotools once':>17} "
          f"{'match once':>10} {'s/1000, 1 thread':>17} {'CPU s/1000':>11} "
          f"{f's/1000, {workers} threads':>19} {'speed-up':>8}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall seconds include waiting "
          f"for the CPU; CPU seconds are this process's own)")
    for n in a.sizes:
        for quantize in (False, True):
            gt, res = synthetic(n, 0, a.dets, quantize)
            tuned, once = matches(gt, res)
            gt2, res2 = synthetic(n, 0, a.dets, quantize)  # same ground truth (same seed) ...
            rng = np.random.default_rng(1)
            for r in res2:  # ... a second model: the same boxes, other scores
                r["score"] = float(np.clip(r["score"] + rng.normal(0, 0.05), 0, 1))
                if quantize:
                    r["score"] = round(r["score"] * 256) / 256
            t = time.perf_counter()
            base, _ = matches(gt2, res2)
            match_s = time.perf_counter() - t
            t, c = time.perf_counter(), time.process_time()
            one = bootstrap.paired_draws({"tuned": tuned, "baseline": base}, a.resamples, seed=0, key="global")
            per_1000 = (time.perf_counter() - t) * 1000 / a.resamples
            cpu_1000 = (time.process_time() - c) * 1000 / a.resamples
            t = time.perf_counter()
            many = bootstrap.paired_draws({"tuned": tuned, "baseline": base}, a.resamples, seed=0,
                                          key="global", workers=workers)
            par_1000 = (time.perf_counter() - t) * 1000 / a.resamples
            for m in one["draws"]:  # same draws, same figures, whatever the thread count
                for k, v in one["draws"][m].items():
                    np.testing.assert_array_equal(v, many["draws"][m][k])
            tied = sum(c.tied for c in tuned.categories) + sum(c.tied for c in base.categories)
            print(f"{n:7d} {'int8' if quantize else 'float':>6} {len(res):7d} {tied:9d} {once:16.2f}s "
                  f"{match_s:9.2f}s {per_1000:16.2f}s {cpu_1000:10.2f}s {par_1000:18.2f}s "
                  f"{per_1000 / par_1000:7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
