"""Benchmark the sample step's core on a synthetic global pool (tables in memory, not files).

    python benchmarks/sample_pool.py [--images 1000000] [--boxes-per-image 3] [--users 2000]

Prints the time of `camtune.steps.sample.draw.sample_pool` (goal: <= 10 s for 1,000,000 images /
~3,000,000 annotations on 2 cores) and the balance it achieved per stratum.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from camtune.core import config
from camtune.core.config import SampleParams
from camtune.steps.sample.draw import SampleResult, manifests, sample_pool, user_cap, write_outputs

LABELS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog", "cat", "deer"]
# skewed like real doorbell/driveway footage: deer is rare, person/car dominate
LABEL_P = np.array([.34, .08, .30, .06, .02, .02, .015, .06, .05, .04, .0003])
CONDITIONS = np.array(["day", "night", "dusk", "snow", "rain", "fog"], dtype=object)
CONDITION_P = np.array([.62, .25, .07, .03, .025, .005])


def synthetic_pool(n_images: int, boxes_per_image: float, n_users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # heavy-tailed users (a few submit most images) so the max_user_share cap has work to do
    weights = 1.0 / np.arange(1, n_users + 1) ** 1.1
    user = rng.choice(n_users, size=n_images, p=weights / weights.sum())
    cams_per_user = rng.integers(1, 9, size=n_users)
    camera = (rng.random(n_images) * cams_per_user[user]).astype(np.int64)
    user_names = np.array([f"u{u:05d}" for u in range(n_users)], dtype=object)
    cam_names = np.array([f"cam{c}" for c in range(8)], dtype=object)
    cond = CONDITIONS[rng.choice(len(CONDITIONS), size=n_images, p=CONDITION_P)]
    cond[rng.random(n_images) < 0.05] = None                      # some images carry no condition
    ids = rng.permutation(np.arange(1, 3 * n_images, 3))[:n_images]  # sparse, unordered ids
    images = pd.DataFrame({
        "id": ids, "file_name": None, "width": 640, "height": 360,
        "user_id": user_names[user], "camera": cam_names[camera], "captured_at": None,
        "verified": rng.random(n_images) < 0.92, "verified_at": None, "condition": cond, "sha256": None,
    })
    per_image = rng.poisson(boxes_per_image, size=n_images)
    per_image[rng.random(n_images) < 0.08] = 0                    # negatives
    image_id = np.repeat(ids, per_image)
    n_ann = len(image_id)
    label_idx = rng.choice(len(LABELS), size=n_ann, p=LABEL_P / LABEL_P.sum())
    labels = np.array(LABELS, dtype=object)
    annotations = pd.DataFrame({
        "id": np.arange(n_ann), "image_id": image_id, "category_id": label_idx + 1,
        "x": 10.0, "y": 10.0, "w": 50.0, "h": 80.0, "label": labels[label_idx],
    })
    return images, annotations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--boxes-per-image", type=float, default=3.26)   # ~3,000,000 with 8% negatives
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--max-images", type=int, default=100_000)
    ap.add_argument("--split-unit", default="camera", choices=["image", "camera", "user"])
    args = ap.parse_args()

    t0 = time.perf_counter()
    images, annotations = synthetic_pool(args.images, args.boxes_per_image, args.users)
    t_build = time.perf_counter() - t0
    user_id = "u00001"          # a heavy submitter: excluded from global_eval and replay
    params = SampleParams(split_unit=args.split_unit, base_train_max_images=args.max_images,
                          max_user_share=0.05, min_per_label=200)
    t0 = time.perf_counter()
    s = sample_pool(images, annotations, user_id=user_id, label_names=LABELS, params=params,
                    user_verified=500, source="synthetic pool")
    t_sample = time.perf_counter() - t0

    # the files too: manifests (sorted ids as JSON) + strata.csv, written atomically
    full = config.load(config.ROOT / "params.yaml", {
        "sample.split_unit": args.split_unit, "sample.base_train_max_images": args.max_images,
        "sample.max_user_share": 0.05, "sample.min_per_label": 200, "user.id": user_id})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = SampleResult(s, manifests(s, params=full, pool_sha256="0" * 64, user_verified=500))
        write_outputs(Path(tmp) / "sample", result)
        sizes = sum(p.stat().st_size for p in (Path(tmp) / "sample").iterdir())
    t_write = time.perf_counter() - t0

    print(f"pool: {len(images):,} images ({int(images['verified'].sum()):,} verified), "
          f"{len(annotations):,} annotations, {images['user_id'].nunique():,} users "
          f"(built in {t_build:.1f} s)")
    print(f"sample_pool ({args.split_unit} split): {t_sample:.2f} s   [goal <= 10 s on 2 cores]")
    print(f"base_train {len(s.base_train):,} (weighted {len(s.base_train) + sum(v - 1 for v in s.repeats.values()):,}),"
          f" global_eval {len(s.global_eval):,}, replay {len(s.replay):,}")
    print(f"manifests + strata.csv written in {t_write:.2f} s ({sizes / 1e6:.1f} MB)")
    for w in s.warnings:
        print(f"  warning: {w}")
    st = s.strata
    for dim in ("label", "condition"):
        t = st[st["dimension"] == dim].pivot_table(index="value", columns="set", values="share", sort=False)
        w = st[(st["dimension"] == dim) & (st["set"] == "base_train")].set_index("value")
        t["base_train_images"] = w["images"]
        t["base_train_weighted"] = w["weighted_images"]
        print(f"\nshare of images per {dim} (pool_verified vs sets):")
        print(t[["pool_verified", "base_train", "global_eval", "replay", "base_train_images",
                 "base_train_weighted"]].to_string(float_format=lambda v: f"{v:.3f}"))
    users = st[(st["dimension"] == "user")]
    top = users.pivot_table(index="value", columns="set", values="share").sort_values("pool_verified", ascending=False)
    print(f"\ntop users by pool share (cap {params.max_user_share} = "
          f"{int(user_cap(params.max_user_share, len(s.base_train))):,} images of base_train):")
    print(top.head(5)[["pool_verified", "base_train", "global_eval"]].to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
