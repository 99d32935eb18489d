"""Suggestions: our model pre-annotates the unverified images, which are then ranked for review.

The model runs exactly as validate's reference-model audit runs it (camtune.model.detections,
shared with camtune.steps.validate.audit: the same image loop, Frigate's TFLite runner, and
`unlabeled` to find detections no existing box of the same label covers). Each such detection above `ingest.suggest.score_floor` becomes an
annotation with `origin: "model"` and its score; a detection that overlaps a Frigate box of its
label (IoU >= merge_iou) is the same object and is not added again. Re-running replaces the
previous model suggestions; verified images are never touched.

Ranking: how much would verifying this image teach the model? The priority of an image is

    margin_weight * margin + disagreement_weight * disagreement + scarcity_weight * scarcity

- margin (0..1): max over the image's boxes (Frigate's and the model's, with scores) of
  1 - |score - t| / (1 - t if score >= t else t), t = the label's advised Frigate `threshold` (filters.yml of
  the model, else `default_threshold`): scores right at the threshold are where a label flips
  Frigate's decision, so they are the most informative.
- disagreement (0..1): the share of Frigate's boxes for which our model either sees nothing at
  IoU >= merge_iou or names a different label.
- scarcity (0..1): 1 / (1 + verified images of this camera / scarcity_scale): cameras with few
  verified images are what the fine-tune knows least.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from camtune.core.config import AuditParams, SuggestIngestParams
from camtune.steps.ingest.coco import IngestError, copy_coco, label_ids, next_id


def annotation_table(coco: dict, image_ids) -> pd.DataFrame:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    ids = set(image_ids)
    rows = [{"id": a["id"], "image_id": a["image_id"], "x": a["bbox"][0], "y": a["bbox"][1],
             "w": a["bbox"][2], "h": a["bbox"][3], "label": names.get(a["category_id"]),
             "origin": a.get("origin"), "score": a.get("score")}
            for a in coco["annotations"] if a["image_id"] in ids]
    return pd.DataFrame(rows, columns=["id", "image_id", "x", "y", "w", "h", "label", "origin", "score"])


def margin(scores_labels, thresholds: dict[str, float], default: float) -> float:
    best = 0.0
    for score, label in scores_labels:
        if score is None or not np.isfinite(score):
            continue
        t, s = thresholds.get(label, default), float(score)
        # distance to the threshold as a share of the room on that side: 1 at t, 0 at 0 and at 1
        room = (1.0 - t) if s >= t else t
        best = max(best, 1.0 - min(1.0, abs(s - t) / room) if room > 0 else 0.0)
    return best


def disagreement(frigate: pd.DataFrame, pred: dict, width: int, height: int, label_names: Sequence[str],
                 rules: SuggestIngestParams) -> float:
    """Share of Frigate's boxes in an image that our model misses or labels differently
    (`label_names[i]` is model class i; `rules` is params' `ingest.suggest`)."""
    from camtune.core.boxes import iou_matrix

    if not len(frigate):
        return 0.0
    scores = np.asarray(pred["scores"], dtype=np.float64)
    keep = scores >= rules.score_floor
    boxes = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)[keep]
    classes = np.asarray(pred["classes"], dtype=np.int64)[keep]
    names = np.array([label_names[c] if 0 <= c < len(label_names) else "" for c in classes],
                     dtype=object)
    gt = np.stack([frigate["y"] / height, frigate["x"] / width, (frigate["y"] + frigate["h"]) / height,
                   (frigate["x"] + frigate["w"]) / width], axis=1).astype(np.float64)
    if not len(boxes):
        return 1.0
    iou = iou_matrix(gt, boxes)
    best = iou.argmax(axis=1)
    seen = iou[np.arange(len(gt)), best] >= rules.merge_iou
    same = names[best] == frigate["label"].to_numpy(dtype=object)
    return float(np.mean(~(seen & same)))


def suggest(root: str | Path, coco: dict, detector, label_names: Sequence[str], rules: SuggestIngestParams,
            thresholds: dict[str, float] | None = None, *, progress: bool = False,
            limits=None) -> tuple[dict, list[dict], dict]:
    """(new coco, ranking high priority first, counts). Pure apart from reading the images; an
    image the checked resolver/decoder refuses is skipped and named in counts["skipped"]."""
    from tqdm import tqdm

    from camtune.model.detections import predictions, unlabeled

    root = Path(root)
    thresholds = thresholds or {}
    cat_ids = label_ids(coco, [n for n in label_names if n in {c["name"] for c in coco["categories"]}])
    unverified = [img for img in coco["images"] if not img.get("verified")]
    todo = {img["id"] for img in unverified}
    out = copy_coco(coco)
    # the previous run's suggestions are replaced, never stacked
    out["annotations"] = [a for a in out["annotations"]
                          if not (a["image_id"] in todo and a.get("origin") == "model")]
    anns = annotation_table(out, todo)
    by_image = dict(tuple(anns.groupby("image_id"))) if len(anns) else {}
    empty = anns.iloc[0:0]
    verified_per_camera: dict[str, int] = {}
    for img in coco["images"]:
        if img.get("verified"):
            verified_per_camera[img["camera"]] = verified_per_camera.get(img["camera"], 0) + 1
    # the audit's "unlabeled object" rule, at the suggestion floor and merge overlap
    as_audit = AuditParams(score_threshold=rules.score_floor, iou_threshold=rules.merge_iou)
    images = pd.DataFrame([{"id": i["id"], "file_name": i["file_name"], "width": i["width"],
                            "height": i["height"], "camera": i["camera"]} for i in unverified],
                          columns=["id", "file_name", "width", "height", "camera"])
    ann_id = next_id(out["annotations"])
    ranking, added, unknown = [], 0, {}
    skipped: list[dict] = []
    for r, pred in tqdm(predictions(root, images, detector, limits, skipped), total=len(images), desc="suggest",
                        unit="image", disable=not progress):
        own = by_image.get(r.id, empty)
        new = []
        for label, score, box, _ in unlabeled(pred, own, r.width, r.height, label_names, as_audit):
            if label not in cat_ids:
                unknown[label] = unknown.get(label, 0) + 1
                continue
            ymin, xmin, ymax, xmax = (float(v) for v in box)
            bbox = [xmin * r.width, ymin * r.height, (xmax - xmin) * r.width, (ymax - ymin) * r.height]
            if bbox[2] <= 0 or bbox[3] <= 0:
                continue
            out["annotations"].append({"id": ann_id, "image_id": int(r.id), "category_id": cat_ids[label],
                                       "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
                                       "origin": "model", "score": round(float(score), 6)})
            new.append((float(score), label))
            ann_id += 1
        added += len(new)
        frigate = own[own["origin"] == "frigate"]
        scored = [(s, lbl) for s, lbl in zip(own["score"], own["label"]) if s is not None] + new
        m = margin(scored, thresholds, rules.default_threshold)
        d = disagreement(frigate, pred, r.width, r.height, label_names, rules)
        s = 1.0 / (1.0 + verified_per_camera.get(r.camera, 0) / rules.scarcity_scale)
        priority = rules.margin_weight * m + rules.disagreement_weight * d + rules.scarcity_weight * s
        ranking.append({"image_id": int(r.id), "file_name": r.file_name, "camera": r.camera,
                        "priority": round(priority, 6), "margin": round(m, 6), "disagreement": round(d, 6),
                        "scarcity": round(s, 6), "suggested": len(new), "frigate_boxes": int(len(frigate))})
    ranking.sort(key=lambda e: (-e["priority"], e["image_id"]))
    for i, e in enumerate(ranking, 1):
        e["rank"] = i
    counts = {"images": len(images), "suggested_boxes": added, "unknown_model_labels": unknown,
              "skipped": skipped}
    return out, ranking, counts


def read_thresholds(filters_yml: str | Path | None) -> dict[str, float]:
    """Frigate `objects.filters.<label>.threshold` from a model's filters.yml (evaluate's advice)."""
    import yaml

    if filters_yml is None or not Path(filters_yml).is_file():
        return {}
    doc = yaml.safe_load(Path(filters_yml).read_text()) or {}
    filters = ((doc.get("objects") or {}).get("filters") or {}) if isinstance(doc, dict) else {}
    return {k: float(v["threshold"]) for k, v in filters.items()
            if isinstance(v, dict) and isinstance(v.get("threshold"), (int, float))}


def resolve_model(params, cache_dir: str | Path) -> tuple[Path, str, Path | None]:
    """(tflite path, model version name, filters.yml or None): ingest.suggest.model, else the
    user's newest published model (downloaded from the registry, sha256-checked)."""
    explicit = params.ingest.suggest.model
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise IngestError(f"ingest.suggest.model {path}: no such file")
        filters = path.parent / "filters.yml"
        return path, path.stem, filters if filters.is_file() else None
    from camtune.contracts.registry import open_registry

    reg = open_registry(params.publish.registry, params.user.id)
    latest = reg.current_model(params.user.id)  # a model not promoted is not what the user runs
    if latest is None:
        raise IngestError(f"user {params.user.id!r} has no published model yet and ingest.suggest.model is "
                          "null: set ingest.suggest.model to a Frigate-contract TFLite file (for example "
                          "artifacts/export/model.tflite after `dvc repro export`, or Frigate's own model)")
    model_id = latest["model_id"]
    dest = Path(cache_dir) / model_id
    dest.mkdir(parents=True, exist_ok=True)
    path = reg.download_file(params.user.id, model_id, "model.tflite", dest / "model.tflite")
    filters = None
    for name in ("labelmap.txt", "filters.yml"):
        try:
            got = reg.download_file(params.user.id, model_id, name, dest / name)
        except Exception:  # optional files
            continue
        if name == "filters.yml":
            filters = got
    return path, model_id, filters


def report_markdown(ranking: list[dict], counts: dict, model: str, top: int = 30) -> str:
    lines = [f"# Suggestions ({model})", "",
             f"{counts['images']} unverified images, {counts['suggested_boxes']} suggested boxes. "
             "Priority = margin_weight x margin + disagreement_weight x disagreement + "
             "scarcity_weight x scarcity (see camtune/steps/ingest/suggest.py).", "",
             "| rank | image | camera | priority | margin | disagreement | scarcity | suggested | frigate boxes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in ranking[:top]:
        lines.append(f"| {e['rank']} | {e['file_name']} | {e['camera']} | {e['priority']:.3f} | {e['margin']:.3f} "
                     f"| {e['disagreement']:.3f} | {e['scarcity']:.3f} | {e['suggested']} | {e['frigate_boxes']} |")
    if counts.get("unknown_model_labels"):
        lines += ["", f"Model labels not in the dataset (skipped): {counts['unknown_model_labels']}"]
    if counts.get("skipped"):
        lines += ["", f"Images not read ({len(counts['skipped'])}; validate names them too):"]
        lines += [f"- image {s['image_id']} `{s['file']}`: {s['reason']}" for s in counts["skipped"][:50]]
    return "\n".join(lines) + "\n"
