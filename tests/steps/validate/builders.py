"""Tiny, valid datasets built on the fly, and a way to prove validation never touches them
(shared by tests/steps/validate and tests/steps/validate/test_flow.py)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from camtune.core import config

LABELS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog", "cat",
          "deer"]
PARENTS = {"face": ["person"], "license_plate": ["car"], "amazon": ["car"], "ups": ["car"], "fedex": ["car"]}
USER = "u_test"
W, H = 64, 48


def write_image(path: Path, seed: int, size=(W, H), fmt="JPEG") -> None:
    """Distinct content per seed (so no two images are byte-identical), with a red square."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 120, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, fmt)


def categories() -> list[dict]:
    return [{"id": i + 1, "name": n, "attribute_of": PARENTS.get(n, [])} for i, n in enumerate(LABELS)]


def cat_id(name: str) -> int:
    return LABELS.index(name) + 1


def make_dataset(root: Path, n_images: int = 12, n_verified: int | None = None) -> dict:
    """A valid dataset: each image has a person with a face and a car with a plate and a ups logo,
    two cameras, two conditions each."""
    n_verified = n_images if n_verified is None else n_verified
    images, anns = [], []
    for i in range(n_images):
        iid = i + 1
        fname = f"images/{iid:04d}.jpg"
        write_image(root / fname, iid)
        images.append({
            "id": iid, "file_name": fname, "width": W, "height": H, "user_id": USER,
            "camera": f"cam_{'ab'[i % 2]}", "captured_at": f"2026-01-{iid:02d}T12:00:00Z",
            "verified": i < n_verified, "verified_at": f"2026-02-{iid:02d}T12:00:00Z" if i < n_verified else None,
            "condition": ["day", "day", "night", "night"][i % 4],
        })
        base = iid * 10
        anns += [
            {"id": base + 1, "image_id": iid, "category_id": cat_id("person"), "bbox": [2, 2, 20, 40]},
            {"id": base + 2, "image_id": iid, "category_id": cat_id("face"), "bbox": [6, 4, 8, 8]},
            {"id": base + 3, "image_id": iid, "category_id": cat_id("car"), "bbox": [28, 18, 34, 28]},
            {"id": base + 4, "image_id": iid, "category_id": cat_id("license_plate"), "bbox": [40, 38, 10, 4]},
            {"id": base + 5, "image_id": iid, "category_id": cat_id("ups"), "bbox": [30, 20, 8, 8]},
        ]
    coco = {"images": images, "annotations": anns, "categories": categories()}
    save(root, coco)
    return coco


def save(root: Path, coco: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotations.json").write_text(json.dumps(coco, indent=1))


def tree_hash(root: Path) -> str:
    """Names, bytes and symlink targets of everything under root (links are not followed)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode() + b"\0")
            if p.is_symlink():
                h.update(b"L" + os.readlink(p).encode())
            elif p.is_file():
                h.update(b"F" + p.read_bytes())
    return h.hexdigest()


def make_params(root: Path, registry: Path, **overrides):
    base = {
        "data.user_dataset": str(root),
        "user.id": USER,
        "publish.registry.kind": "local",
        "publish.registry.root": str(registry),
        "validate.warn_min_per_camera": 2,
        "validate.reference_model": None,
    }
    base.update(overrides)
    return config.load(config.ROOT / "params.yaml", base)


