"""Benchmark the public-dataset import (camtune.steps.ingest_public.public_coco) on a generated COCO file.

    python benchmarks/ingest_public.py [--annotations 100000] [--images 14000] [--max-images 20000]

Generates a COCO-format source shaped like instances_train2017 (80 categories, ~7 boxes per
image, COCO's category names, tiny JPEG files), then times, side by side: reading the json, the
plan (mapping + partial-labelling rule + negative share + hash order), the first write (hard
links vs copies, sha256 of every image) and a resumed run that finds every image in place.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from camtune.core import config  # noqa: E402
from camtune.steps.ingest_public import public_coco

COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella "
    "handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard "
    "surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange "
    "broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop "
    "mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors "
    "teddy_bear hair_drier toothbrush").split()
# roughly COCO's skew: person is in ~45% of the boxes
P = np.full(len(COCO_NAMES), 1.0)
P[0] = 60
P[COCO_NAMES.index("car")] = 8
P /= P.sum()


def make_source(root: Path, n_anns: int, n_images: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    imgs = root / "train"
    imgs.mkdir(parents=True)
    buf = root / "one.jpg"
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buf, quality=80)
    data = buf.read_bytes()
    images = []
    for i in range(n_images):
        fn = f"{i + 1:012d}.jpg"
        (imgs / fn).write_bytes(data)
        images.append({"id": i + 1, "file_name": fn, "width": 640, "height": 480, "license": 1,
                       "coco_url": f"http://images.cocodataset.org/train2017/{fn}",
                       "flickr_url": "", "date_captured": "2013-11-14 11:18:45"})
    img_of = rng.integers(1, n_images + 1, n_anns)
    cat_of = rng.choice(len(COCO_NAMES), size=n_anns, p=P) + 1
    xy = rng.uniform(0, 400, (n_anns, 2))
    wh = rng.uniform(4, 200, (n_anns, 2))
    crowd = rng.random(n_anns) < 0.01
    anns = [{"id": k + 1, "image_id": int(img_of[k]), "category_id": int(cat_of[k]),
             "bbox": [round(float(xy[k, 0]), 2), round(float(xy[k, 1]), 2),
                      round(float(wh[k, 0]), 2), round(float(wh[k, 1]), 2)],
             "area": float(wh[k, 0] * wh[k, 1]), "iscrowd": int(crowd[k])} for k in range(n_anns)]
    src = root / "instances.json"
    src.write_text(json.dumps({"info": {}, "licenses": [{"id": 1, "name": "CC BY 2.0"}], "images": images,
                               "annotations": anns,
                               "categories": [{"id": i + 1, "name": n} for i, n in enumerate(COCO_NAMES)]}))
    return src, imgs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotations", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=14_000, help="source images (COCO: ~7.3 boxes each)")
    ap.add_argument("--max-images", type=int, default=20_000)
    args = ap.parse_args()
    params = config.load(config.ROOT / "params.yaml")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        src, imgs = make_source(tmp / "src", args.annotations, args.images)
        print(f"generated {args.images} images / {args.annotations} annotations "
              f"({src.stat().st_size / 1e6:.1f} MB json) in {time.perf_counter() - t:.1f} s")
        rows = []
        for link in ("hardlink", "copy"):
            ip = params.ingest_public.model_copy(update={
                "annotations": str(src), "images": str(imgs), "out": str(tmp / link),
                "max_images": args.max_images, "link": link})
            t0 = time.perf_counter()
            coco = public_coco.read_source(src)
            t1 = time.perf_counter()
            plan = public_coco.plan(coco, params=ip, labels=params.labels, mapping=dict(ip.map),
                                    tracked=list(ip.tracked))
            t2 = time.perf_counter()
            public_coco.write_pool(plan, images_dir=imgs, out_dir=Path(ip.out) / ip.name, link=link,
                                   progress=False)
            t3 = time.perf_counter()
            again = public_coco.ingest(ip, params.labels, progress=False)
            t4 = time.perf_counter()
            n = plan.stats["images"]
            rows.append((link, t1 - t0, t2 - t1, t3 - t2, t4 - t3, n, again["images_written"]))
        s = plan.stats
        print(f"pool: {s['images']} images ({s['positives']} with boxes, {s['negatives']} negatives), "
              f"{s['boxes']} boxes; dropped as incompletely labelled: {s['dropped_incomplete']} "
              f"{s['dropped_incomplete_by_reason']}")
        print(f"{'link':<9}{'read json':>11}{'plan':>9}{'write':>9}{'img/s':>9}{'resume':>9}{'img/s':>9}  "
              f"(cpus: {os.cpu_count()})")
        for link, r, p, w, again, n, rewritten in rows:
            print(f"{link:<9}{r:>10.2f}s{p:>8.2f}s{w:>8.2f}s{n / w:>9.0f}{again:>8.2f}s{n / again:>9.0f}"
                  f"   resume wrote {rewritten}")


if __name__ == "__main__":
    main()
