"""A tiny learnable dataset in the camtune format (for training tests until/unless the shared
`sample_datasets` fixture is used): tall red boxes are `person`, wide blue boxes are `car`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog",
          "cat", "deer"]


def make_dataset(root: str | Path, n: int = 8, *, user: str = "u_test", start_id: int = 1,
                 size: tuple[int, int] = (160, 96), seed: int = 0, unverified: int = 1,
                 negatives: int = 1) -> Path:
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    cats = [{"id": i + 1, "name": n_, "attribute_of": []} for i, n_ in enumerate(LABELS)]
    images, anns = [], []
    aid = start_id * 100
    for k in range(n):
        iid = start_id + k
        arr = np.full((h, w, 3), 90, np.uint8) + rng.integers(0, 30, (h, w, 3), dtype=np.uint8)
        boxes = []
        if k >= negatives:
            for _ in range(int(rng.integers(1, 3))):
                if rng.random() < 0.5:
                    bw, bh, color, cat = int(w * 0.15), int(h * 0.5), (220, 30, 30), 1
                else:
                    bw, bh, color, cat = int(w * 0.35), int(h * 0.25), (30, 30, 220), 3
                x = int(rng.integers(0, w - bw)); y = int(rng.integers(0, h - bh))
                arr[y:y + bh, x:x + bw] = color
                boxes.append((cat, [x, y, bw, bh]))
        fn = f"images/{iid:06d}.jpg"
        Image.fromarray(arr).save(root / fn, quality=90)
        images.append({"id": iid, "file_name": fn, "width": w, "height": h, "user_id": user,
                       "camera": f"{user}_cam{k % 2}", "captured_at": "2026-01-01T00:00:00Z",
                       "verified": k < n - unverified, "verified_at": None})
        for cat, bb in boxes:
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "bbox": bb,
                         "area": float(bb[2] * bb[3]), "iscrowd": 0})
            aid += 1
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": cats}))
    return root
