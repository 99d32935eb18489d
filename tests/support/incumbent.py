"""Incumbent test support: a 90-entry COCO label map in Frigate's stock `labelmap.txt` layout
(`index  name`, the 2017 COCO paper's 90 categories, 0-based), and a local registry entry holding a
real exported model (the pipeline's own export) with a lineage."""
from __future__ import annotations

import json
from pathlib import Path

COCO90 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe",
    "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "plate",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "mirror", "dining table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]
assert len(COCO90) == 90


def write_coco_labelmap(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}  {n}\n" for i, n in enumerate(COCO90)))
    return path


def publish_incumbent(reg, user_id: str, model_id: str, model: Path, labels, image_ids=(), *,
                      promoted: bool | None = None, tmp: Path) -> dict:
    """An index entry with model.tflite, labelmap.txt and lineage.json, as publish writes them."""
    tmp.mkdir(parents=True, exist_ok=True)
    lm = tmp / f"{model_id}-labelmap.txt"
    lm.write_text("".join(f"{i} {n}\n" for i, n in enumerate(labels)))
    lin = tmp / f"{model_id}-lineage.json"
    lin.write_text(json.dumps({"user_id": user_id, "model_id": model_id, "image_ids": sorted(image_ids)}))
    files = {name: reg.put_model_file(user_id, model_id, name, src)
             for name, src in (("model.tflite", model), ("labelmap.txt", lm), ("lineage.json", lin))}
    entry = {"model_id": model_id, "blessed": True, "verdict": "blessed",
             "files": {n: {"sha256": f["sha256"], "size": f["size"]} for n, f in files.items()}}
    if promoted is not None:
        entry["promoted"] = promoted
    return reg.commit(user_id, entry)[0]
