"""The round trip with CVAT.

Out: a "COCO 1.0" annotation file (`annotations/instances_default.json`, also zipped), the images to
upload under the same names, and the label constructor JSON. Every file is named
`ct<image id>_<base name>` (tool_files.export_name): the image id is what the import keys on.

Back: CVAT's COCO 1.0 export, read by review.coco_reviews (only with `--job-completed`, see review.py).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

from camtune.core import atomic
from camtune.steps.ingest.tool_files import COLORS, anns_by_image, checked_file, owned_output, unique_export_names

# what the export wrote before it carried the owner file: such a folder is still ours
CVAT_FILES = frozenset({"annotations", "coco_1.0_annotations.zip", "cvat_labels.json"})


def cvat_coco(coco: dict, images: list[dict], names: dict[int, str]) -> dict:
    """COCO 1.0 as CVAT writes and reads it (datumaro's COCO): licenses, info, categories with
    supercategory, images with license/flickr_url/coco_url/date_captured, annotations with
    segmentation [], iscrowd, attributes {occluded, rotation}."""
    anns = anns_by_image(coco)
    out_images, out_anns = [], []
    for i, img in enumerate(images, 1):
        out_images.append({"id": i, "width": img["width"], "height": img["height"], "file_name": names[img["id"]],
                           "license": 0, "flickr_url": "", "coco_url": "", "date_captured": 0})
        for a in anns.get(img["id"], []):
            x, y, w, h = a["bbox"]
            ca = {"id": len(out_anns) + 1, "image_id": i, "category_id": a["category_id"], "segmentation": [],
                  "area": float(w * h), "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": 0,
                  "attributes": {"occluded": False, "rotation": 0.0}}
            if a.get("score") is not None:
                ca["score"] = float(a["score"])
            out_anns.append(ca)
    return {"licenses": [{"name": "", "id": 0, "url": ""}],
            "info": {"contributor": "camtune", "date_created": "", "description": "", "url": "", "version": "",
                     "year": ""},
            "categories": [{"id": c["id"], "name": c["name"], "supercategory": ""} for c in coco["categories"]],
            "images": out_images, "annotations": out_anns}


def cvat_labels(label_names: list[str], attribute_parents: dict) -> list[dict]:
    """CVAT's label constructor ("Raw") JSON for the project or task."""
    return [{"name": n, "color": COLORS[i % len(COLORS)], "type": "rectangle", "attributes": []}
            for i, n in enumerate(label_names)]


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)



def write_cvat_export(root: Path, coco: dict, images: list[dict], out_dir: Path, label_names, attribute_parents):
    names = unique_export_names(images)
    doc = cvat_coco(coco, images, names)
    with owned_output(out_dir, "export-cvat", CVAT_FILES) as tmp:
        atomic.write_json(tmp / "annotations" / "instances_default.json", doc, indent=None)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("annotations/instances_default.json", json.dumps(doc))
        atomic.write_bytes(tmp / "coco_1.0_annotations.zip", buf.getvalue())
        atomic.write_json(tmp / "cvat_labels.json", cvat_labels(label_names, attribute_parents))
        for img in images:
            _link_or_copy(checked_file(root, img), tmp / "images" / names[img["id"]])
    return doc
