"""The round trip with Label Studio.

Out (the unverified images, highest review priority first): `tasks.json`, a list of tasks
`{"data": {"image": URL, "camtune_image_id", ...}, "predictions": [{"model_version", "score",
"result": [...]}]}` whose results are `rectanglelabels` regions in PERCENT of the image
(`value.x/y/width/height`, `original_width/height`), plus `labeling_config.xml` (a RectangleLabels
tag with our labels; attribute labels say which parent they belong in; `category` = our category
id, which LS's COCO export keeps).

Back (`ls_reviews`, LS's JSON export): a task is done when it has an annotation that was not
cancelled (`was_cancelled: false`, LS's "skip" sets it true); its newest such annotation is the
truth. Tasks with only predictions, or only skipped annotations, are not done and change nothing.
LS's COCO export is read by review.coco_reviews; review.py says what a done image becomes.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from camtune.core import atomic
from camtune.steps.ingest.coco import IngestError
from camtune.steps.ingest.review import Review, canonical_label, finite, iso_utc, now_utc, refuse_unknown
from camtune.steps.ingest.tool_files import (COLORS, anns_by_image, basename, category_names, checked_file,
                                             image_from_export_name, owned_output, place_by_name,
                                             unique_base_names)

LS_FROM, LS_TO = "label", "image"
# what the export wrote before it carried the owner file: such a folder is still ours
LS_FILES = frozenset({"tasks.json", "labeling_config.xml"})


def ls_labeling_config(coco: dict, label_names: list[str], attribute_parents: dict[str, list[str]]) -> str:
    from xml.sax.saxutils import quoteattr

    cat = {c["name"]: c["id"] for c in coco["categories"]}
    lines = ["<View>",
             "  <Header value=\"Box every object of these labels; attribute labels go inside their parent\"/>",
             f"  <Image name=\"{LS_TO}\" value=\"$image\" zoom=\"true\" zoomControl=\"true\"/>",
             f"  <RectangleLabels name=\"{LS_FROM}\" toName=\"{LS_TO}\" canRotate=\"false\" strokeWidth=\"2\">"]
    for i, name in enumerate(label_names):
        hint = ""
        if attribute_parents.get(name):
            hint = f" hint={quoteattr('attribute: its own box, inside its ' + ' or '.join(attribute_parents[name]))}"
        lines.append(f"    <Label value={quoteattr(name)} category=\"{cat[name]}\" "
                     f"background=\"{COLORS[i % len(COLORS)]}\"{hint}/>")
    lines += ["  </RectangleLabels>", "</View>"]
    return "\n".join(lines) + "\n"


def ls_image_url(root: Path, file_name: str, prefix: str, document_root: str) -> str:
    rel = os.path.relpath(os.path.abspath(root / file_name), os.path.abspath(document_root))
    if rel.startswith(".."):
        raise IngestError(f"{root / file_name} is outside ingest.tools.ls_document_root {document_root}: "
                          "Label Studio's local files cannot serve it")
    return prefix + rel.replace(os.sep, "/")


def ls_region(ann: dict, label: str, width: int, height: int) -> dict:
    x, y, w, h = ann["bbox"]
    r = {"id": f"c{ann['id']}", "type": "rectanglelabels", "from_name": LS_FROM, "to_name": LS_TO,
         "original_width": width, "original_height": height, "image_rotation": 0,
         "value": {"x": x / width * 100.0, "y": y / height * 100.0, "width": w / width * 100.0,
                   "height": h / height * 100.0, "rotation": 0, "rectanglelabels": [label]}}
    if ann.get("score") is not None:
        r["score"] = float(ann["score"])
    return r


def ls_tasks(root: Path, coco: dict, images: list[dict], ranking: list[dict] | None, *, model_version: str,
             url_prefix: str, document_root: str) -> list[dict]:
    names, anns = category_names(coco), anns_by_image(coco)
    rank = {e["image_id"]: e for e in ranking or []}
    tasks = []
    for img in images:
        result = [ls_region(a, names[a["category_id"]], img["width"], img["height"])
                  for a in anns.get(img["id"], [])]
        scores = [r["score"] for r in result if "score" in r]
        checked_file(root, img)
        data = {"image": ls_image_url(root, img["file_name"], url_prefix, document_root),
                "camtune_image_id": img["id"], "camtune_file": img["file_name"], "camera": img["camera"],
                "captured_at": img["captured_at"]}
        if img["id"] in rank:
            data.update(priority=rank[img["id"]]["priority"], rank=rank[img["id"]]["rank"])
        task = {"data": data}
        if result:
            # LS sorts and filters by prediction score: the least confident box
            task["predictions"] = [{"model_version": model_version, "score": min(scores) if scores else 0.0,
                                    "result": result}]
        tasks.append(task)
    return tasks


def _ls_image_key(task: dict) -> tuple[int | None, str | None]:
    data = task.get("data") or {}
    iid = data.get("camtune_image_id")
    url = data.get("image")
    name = None
    if isinstance(url, str):
        q = parse_qs(urlparse(url).query)
        name = basename(unquote(q["d"][-1])) if "d" in q else basename(unquote(urlparse(url).path))
    return (iid if isinstance(iid, int) and not isinstance(iid, bool) else None), name


def ls_reviews(export, coco: dict, label_names: list[str], path) -> tuple[list[Review], list]:
    """Label Studio's JSON export -> reviews of the done tasks (and the tasks not done)."""
    if not isinstance(export, list):
        raise IngestError(f"{path}: expected Label Studio's JSON export (a list of tasks), got "
                          f"{type(export).__name__}; for its COCO export use --format coco")
    images = {img["id"]: img for img in coco["images"]}
    unique, repeated = unique_base_names(coco["images"])
    reviews, not_done, unknown, missing = [], [], [], []
    placed: dict[int, object] = {}
    for t_i, task in enumerate(export):
        tid = task.get("id", f"#{t_i}") if isinstance(task, dict) else f"#{t_i}"
        if not isinstance(task, dict):
            raise IngestError(f"{path}: task {tid}: not an object")
        iid, name = _ls_image_key(task)
        shown = (task.get('data') or {}).get('image')
        if iid is not None:
            # the id our export put in the task is the key; the task's image must be that image's file
            if iid not in images:
                missing.append(f"task {tid} ({shown}): camtune_image_id {iid} is not in the dataset")
                continue
            if name is not None and name != basename(images[iid]["file_name"]) and \
                    image_from_export_name(name, images) != iid:
                missing.append(f"task {tid} ({shown}): camtune_image_id {iid} is "
                               f"{images[iid]['file_name']!r}, not this task's image")
                continue
        else:
            iid, why = place_by_name(name, unique, repeated, images, "label_studio")
            if iid is None:
                missing.append(f"task {tid} ({shown}): {why}")
                continue
        if iid in placed:
            missing.append(f"task {tid} ({shown}): image {iid} is also task {placed[iid]}")
            continue
        placed[iid] = tid
        done = [a for a in task.get("annotations") or []
                if isinstance(a, dict) and not a.get("was_cancelled") and not a.get("skipped")]
        if not done:
            not_done.append(tid)
            continue
        ann = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
        img = images[iid]
        boxes = []
        for r in ann.get("result") or []:
            if not isinstance(r, dict) or r.get("type") != "rectanglelabels":
                continue
            where = f"task {tid} annotation {ann.get('id')} region {r.get('id')}"
            v = r.get("value") if isinstance(r.get("value"), dict) else {}
            labels = v.get("rectanglelabels") or []
            if len(labels) != 1:
                unknown.append(f"{where}: expected one label, got {labels}")
                continue
            label = canonical_label(labels[0], label_names, where, unknown)
            if abs(finite(v.get("rotation") or 0, f"{path}: {where}: rotation")) > 1e-9:
                raise IngestError(f"{path}: {where}: rotated box ({v.get('rotation')} deg); "
                                  "rotation is not allowed, straighten it in Label Studio")
            W = r.get("original_width") or img["width"]
            H = r.get("original_height") or img["height"]
            if (W, H) != (img["width"], img["height"]):
                raise IngestError(f"{path}: {where}: the tool's image is {W}x{H} but image {iid} "
                                  f"({img['file_name']}) is {img['width']}x{img['height']}")
            pct = [finite(v.get(k), f"{path}: {where}: value.{k}") for k in ("x", "y", "width", "height")]
            bbox = [pct[0] * W / 100.0, pct[1] * H / 100.0, pct[2] * W / 100.0, pct[3] * H / 100.0]
            rid = str(r.get("id", ""))
            key = rid[1:] if rid.startswith("c") and rid[1:].isdigit() else None
            if label is not None:
                boxes.append((label, bbox, key))
        reviews.append(Review(iid, boxes, iso_utc(ann.get("updated_at") or ann.get("created_at"), now_utc()),
                              f"task {tid}"))
    if missing:
        raise IngestError(f"{path}: refusing the import, {len(missing)} task(s) name no image of this dataset "
                          f"for sure:\n  " + "\n  ".join(missing[:10]) +
                          "\nExport from the project made by export-ls; nothing was changed.")
    refuse_unknown(unknown, label_names, path)
    return reviews, not_done


def write_ls_export(root: Path, coco: dict, images: list[dict], ranking, out_dir: Path, *, model_version: str,
                    url_prefix: str, document_root: str, label_names, attribute_parents):
    tasks = ls_tasks(root, coco, images, ranking, model_version=model_version, url_prefix=url_prefix,
                     document_root=document_root)
    with owned_output(out_dir, "export-ls", LS_FILES) as tmp:
        atomic.write_json(tmp / "tasks.json", tasks, indent=None)
        atomic.write_text(tmp / "labeling_config.xml", ls_labeling_config(coco, label_names, attribute_parents))
    return tasks
