"""Helpers for the ingest tests: a small user dataset with one verified image."""
from __future__ import annotations

import json
from pathlib import Path


def write_verified_dataset(root: Path, params) -> dict:
    """annotations.json with one verified image (and its box) that no import may touch."""
    from PIL import Image

    from camtune.steps.ingest import empty_coco

    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (10, 20, 30)).save(root / "images" / "keep.png")
    coco = empty_coco(list(params.labels.names), dict(params.labels.attribute_parents))
    coco["images"].append({"id": 7, "file_name": "images/keep.png", "width": 40, "height": 30,
                           "user_id": params.user.id, "camera": "front",
                           "captured_at": "2026-01-01T00:00:00Z", "verified": True,
                           "verified_at": "2026-01-02T00:00:00Z"})
    coco["annotations"].append({"id": 3, "image_id": 7, "category_id": 1, "bbox": [1.0, 2.0, 10.0, 12.0],
                                "area": 120.0, "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(coco))
    return coco


def verified_part(coco: dict) -> tuple:
    imgs = sorted((json.dumps(i, sort_keys=True) for i in coco["images"] if i.get("verified")))
    ids = {i["id"] for i in coco["images"] if i.get("verified")}
    anns = sorted(json.dumps(a, sort_keys=True) for a in coco["annotations"] if a["image_id"] in ids)
    return imgs, anns


def read(root: Path) -> dict:
    return json.loads((root / "annotations.json").read_text())


def add_model_suggestion(root: Path, coco: dict, params, image_id: int, camera: str, image: bytes) -> None:
    """An unverified image `images/<camera>/0001.jpg` (64x48) with one model box of category 3;
    the caller writes annotations.json (several cameras can share the file name)."""
    (root / "images" / camera).mkdir(parents=True)
    (root / "images" / camera / "0001.jpg").write_bytes(image)
    coco["images"].append({"id": image_id, "file_name": f"images/{camera}/0001.jpg", "width": 64, "height": 48,
                           "user_id": params.user.id, "camera": camera, "captured_at": "2026-10-02T10:00:00Z",
                           "verified": False, "verified_at": None})
    coco["annotations"].append({"id": 100 + image_id, "image_id": image_id, "category_id": 3,
                                "bbox": [4.0, 4.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0,
                                "origin": "model", "score": 0.5})
