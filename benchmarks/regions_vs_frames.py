"""Whole-frame vs region training on 1280x720 sample frames, same steps and same data, printed side
by side:

- COCO mAP / mAP@.5 on whole frames (pycocotools), and AP per COCO size bucket;
- Frigate-path recall at min_score 0.5 per COCO size bucket (small < 32², medium < 96², large) and
  false detections per 100 regions (`camtune.metrics.frigate_path`);
- cost: the records' size on disk, the time to write them, training images/s.

    python benchmarks/regions_vs_frames.py [--steps 400] [--images 200] [--workdir DIR] [--set k=v ...]

Both models train from scratch with `train_base` (steps overridable) on the same verified images
of a generated global pool; every 5th image (by id) is held out for evaluation. Runs in a scratch
folder, never touching ./artifacts.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)

BUCKETS = (("small", 0, 32 ** 2), ("medium", 32 ** 2, 96 ** 2), ("large", 96 ** 2, float("inf")))


def coco_figures(det, ds, names) -> dict:
    from camtune.metrics import coco as C
    from camtune.metrics.predict import predict_dataset

    gt = C.ground_truth(ds, names)
    dt = C._results(gt, C.detections_to_coco(ds, predict_dataset(det, ds)))
    ev = C._run(gt, dt)
    s = [None if v < 0 else round(float(v), 4) for v in ev.stats]
    return {"map": s[0], "map50": s[1], "ap_small": s[3], "ap_medium": s[4], "ap_large": s[5]}


def frigate_figures(det, ds, names, attrs, min_score: float = 0.5) -> dict:
    from camtune.metrics import frigate_path as F

    size = det.input_size[0]
    runs = F.run_model(F.set_regions(ds, size, attrs), ds, F.checkpoint_runner(det), size, names)
    out = {b: {"objects": 0, "hits": 0} for b, _, _ in BUCKETS}
    for run in runs:
        dets = F._merged(run, min_score)
        hit, _ = F.match(run, dets)
        for (label, box), h in zip(run.gt, hit):
            if label in attrs:
                continue
            area = (box[2] - box[0]) * (box[3] - box[1])
            b = next(b for b, lo, hi in BUCKETS if lo <= area < hi)
            out[b]["objects"] += 1
            out[b]["hits"] += h
    s = F.summarize(runs, names, attrs, min_score)["overall"]
    res = {f"recall_{b}": (round(v["hits"] / v["objects"], 3) if v["objects"] else None) for b, v in out.items()}
    res.update({f"objects_{b}": v["objects"] for b, v in out.items()})
    res.update({"recall": s["recall"], "false_per_100_regions": s["false_per_100_regions"],
                "regions": s["regions"]})
    return res


def main(argv=None) -> int:
    from camtune.core.config import parse_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--images", type=int, default=200, help="global pool images to generate")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    # object_scale 0.35: a 1280x720 camera's people 30-75 px tall, its faces and plates a few px -
    # the small and medium objects whole-frame training shrinks below what the model can see
    overrides = {"sample_data.width": 1280, "sample_data.height": 720, "sample_data.object_scale": 0.35,
                 "sample_data.global_images": args.images, "sample_data.user_images": 20,
                 "sample_data.user_images_in_pool": 0, "train_base.steps": args.steps,
                 "train_base.checkpoint_every": args.steps, **parse_overrides(args.overrides)}

    from camtune.core import config
    from camtune.steps.sample_data import generate
    from camtune.core.dataset import load_dataset
    from camtune.training import experiment, records, train
    from camtune.model.checkpoint import load_detector

    params = config.load(str(ROOT / "params.yaml"), overrides)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="camtune-regions-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"workdir {work}; {params.sample_data.width}x{params.sample_data.height} frames, "
          f"{params.train_base.steps} steps x {params.train_base.batch_size}, input "
          f"{params.training.input_size}")
    gdir = work / "global"
    if not (gdir / "annotations.json").exists():
        t = time.monotonic()
        generate(params, gdir, work / "users")
        print(f"sample data: {time.monotonic() - t:.0f} s")
    pool = load_dataset(gdir).verified()
    ids = sorted(int(i) for i in pool.images["id"])
    eval_ids = ids[::5]
    train_ids = [i for i in ids if i not in set(eval_ids)]
    train_ds, eval_ds = pool.subset(train_ids), pool.subset(eval_ids)
    names = list(params.labels.names)
    attrs = list(params.labels.attribute_parents)
    print(f"train {len(train_ids)} images, evaluate {len(eval_ids)} images "
          f"({len(eval_ds.annotations)} boxes)")

    rows = {}
    for mode in ("frames", "regions"):
        d = work / mode
        t = time.monotonic()
        rs = records.write_records([records.Part(train_ds)], d / "records", label_names=names,
                                   shards=params.training.shards,
                                   regions=params.training.regions if mode == "regions" else None,
                                   input_size=params.training.input_size, attribute_labels=attrs)
        t_rec = time.monotonic() - t
        size_mb = sum(Path(f).stat().st_size for f in rs.files) / 1e6
        exp = experiment.build_experiment_config(params, stage="base", model_dir=str(d / "model"),
                                                 train_files=rs.files)
        result = train.run(exp, d / "model", label_names=names, stage="base", progress=None,
                           precise_bn_batches=params.training.precise_bn_batches)
        det = load_detector(d / "model")
        t = time.monotonic()
        row = {"examples": rs.examples, "kinds": rs.kinds, "records_mb": round(size_mb, 1),
               "records_s": round(t_rec, 1), "train_images_per_s": round(result.images_per_s, 2),
               "train_wall_s": round(result.wall_s, 1), **coco_figures(det, eval_ds, names),
               **frigate_figures(det, eval_ds, names, attrs)}
        row["eval_s"] = round(time.monotonic() - t, 1)
        rows[mode] = row
        print(f"{mode}: {json.dumps(row)}", flush=True)

    keys = ["examples", "records_mb", "records_s", "train_images_per_s", "train_wall_s", "map", "map50",
            "ap_small", "ap_medium", "ap_large", "recall", "recall_small", "recall_medium", "recall_large",
            "objects_small", "objects_medium", "objects_large", "false_per_100_regions", "regions"]
    print(f"\n{'':28}{'whole frames':>14}{'regions':>14}")
    for k in keys:
        a, b = rows["frames"].get(k), rows["regions"].get(k)
        print(f"{k:28}{str(a):>14}{str(b):>14}")
    print("\nrecall* = Frigate-path recall at min_score 0.5 (regions around each object, 0.4 floor, merge);"
          "\nmap / ap_* = COCO on whole frames (pycocotools); objects_* = evaluation objects per COCO size.")
    (work / "result.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
