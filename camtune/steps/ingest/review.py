"""A finished review back in: a tool's export read (`read_export`), its done images as `Review`s
(Label Studio's JSON export: label_studio.ls_reviews; either tool's COCO export: `coco_reviews`),
and the reviews applied to the dataset (`apply_reviews`).

- Label Studio COCO export: LS writes one image entry per non-cancelled annotation (newest first)
  and, only when "export all tasks" was ticked, entries for unannotated tasks too, which COCO
  cannot tell apart from an empty annotation. Every image present counts as done: export
  annotated tasks only (LS's default), or prefer the JSON export.
- CVAT COCO 1.0 export: COCO carries no job state. CVAT's unit of "done" is a job marked
  `completed`; so the import requires `--job-completed` (the user states the exported job or task
  was completed), and then every image in the export is done, images without boxes as verified
  negatives. Without it the import refuses.

A done image gets exactly the tool's boxes (boxes the annotator deleted are deleted; a box kept
unchanged keeps its id, origin and score; a changed or new box has origin "human"), and
`verified: true`. An image already verified in our dataset is never changed by an import.
Labels match case-insensitively; an unknown label, a non-finite coordinate or an item that cannot
be placed on exactly one image of ours (no id and a base name several images share, an id whose
file is another image's, one image twice) refuses the whole import, naming the file, task and
region. Nothing is written unless everything is understood.
"""
from __future__ import annotations

import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from camtune.steps.ingest.coco import IngestError, copy_coco, label_ids, next_id
from camtune.steps.ingest.tool_files import (anns_by_image, basename, image_from_export_name, place_by_name,
                                             unique_base_names)

TOL_PX = 1e-3  # px: a box the annotator did not touch comes back equal up to float round trips


@dataclass
class Review:
    """An annotator's finished image as the tool returned it."""
    image_id: int
    boxes: list[tuple[str, list[float], str | None]]   # (our label, bbox px, our annotation id key or None)
    verified_at: str
    where: str                                         # for messages: file, task


@dataclass
class ApplyCounts:
    verified: int = 0
    kept_verified: int = 0
    unchanged_boxes: int = 0
    changed_or_new_boxes: int = 0
    deleted_boxes: int = 0
    not_done: list = field(default_factory=list)

    def as_dict(self):
        d = dict(self.__dict__)
        d["not_done"] = len(self.not_done)
        return d


def finite(value, where: str) -> float:
    """A tool's number as a float; NaN, Infinity, booleans, strings and huge values are refused
    (Python's json reads NaN and Infinity, and a verified box must be a real box)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IngestError(f"{where}: {value!r} is not a number")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out) or abs(out) > 1e9:
        raise IngestError(f"{where}: {value!r} is not a finite coordinate; fix the box in the tool and export again")
    return out


def canonical_label(name: str, ours: list[str], where: str, unknown: list[str]) -> str | None:
    table = {n.lower(): n for n in ours}
    got = table.get(str(name).strip().lower())
    if got is None:
        unknown.append(f"{where}: label {name!r}")
    return got


def refuse_unknown(unknown: list[str], ours: list[str], path) -> None:
    if unknown:
        more = f" (and {len(unknown) - 15} more)" if len(unknown) > 15 else ""
        raise IngestError(f"{path}: refusing the import, label(s) not in labels.names "
                          f"({', '.join(ours)}; case does not matter):\n  " + "\n  ".join(unknown[:15]) + more +
                          "\nRename them in the tool (or add them to labels.names) and export again; "
                          "nothing was changed.")


def iso_utc(ts: str | None, fallback: str) -> str:
    if not ts:
        return fallback
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


MAX_EXPORT_BYTES = 256 * 2**20  # = validate.max_annotations_bytes' default; the flows pass the param


def read_export(path: str | Path, member_pattern: str = r"\.json$", max_bytes: int = MAX_EXPORT_BYTES):
    """A JSON export file, or the JSON inside a zip export (CVAT: annotations/instances_*.json).
    The file and the unzipped member are read up to `max_bytes` (a zip bomb is refused, whatever
    size the zip's directory declares)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such export file")
    too_big = (f"{path}: larger than {max_bytes} bytes (validate.max_annotations_bytes); refused, "
               "nothing was changed")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if re.search(member_pattern, n)]
                if len(names) != 1:
                    raise IngestError(f"{path}: expected one annotation JSON inside the zip, found {names[:10]}")
                if zf.getinfo(names[0]).file_size > max_bytes:
                    raise IngestError(f"{path}: {names[0]} unzips to {zf.getinfo(names[0]).file_size} bytes; "
                                      + too_big.split(": ", 1)[1])
                with zf.open(names[0]) as fh:
                    data = fh.read(max_bytes + 1)   # the declared size may lie
        else:
            if path.stat().st_size > max_bytes:
                raise IngestError(too_big)
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise IngestError(too_big)
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: not valid JSON: {exc}") from None
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: a broken zip: {exc}") from None
    except RecursionError:
        raise IngestError(f"{path}: JSON nested too deeply; refused") from None


def coco_reviews(export, coco: dict, label_names: list[str], path, tool: str) -> list[Review]:
    """A COCO export (Label Studio's or CVAT's) -> a review for every image in it."""
    if not isinstance(export, dict) or not isinstance(export.get("images"), list):
        raise IngestError(f"{path}: expected a COCO JSON object with images, annotations, categories")
    unique, repeated = unique_base_names(coco["images"])
    cats = {c.get("id"): c.get("name") for c in export.get("categories") or [] if isinstance(c, dict)}
    picked: dict[int, int] = {}   # their image id -> ours (first entry of an image wins: LS newest first)
    first_name: dict[int, str] = {}
    missing = []
    images_by_id = {img["id"]: img for img in coco["images"]}
    for e in export["images"]:
        if not isinstance(e, dict):
            missing.append(f"image entry {e!r}: not an object")
            continue
        base = basename(e.get("file_name", ""))
        if tool == "cvat":  # our CVAT export names every file by image id: nothing else is placed
            iid = image_from_export_name(base, images_by_id)
            why = "not a file name camtune's export-cvat wrote (ct<image id>_<name>) for this dataset"
        else:
            iid, why = place_by_name(base, unique, repeated, images_by_id, tool)
        if iid is None:
            missing.append(f"image {e.get('id')} {e.get('file_name')!r}: {why}")
            continue
        if iid in first_name:
            # LS writes one entry per annotation of a task (newest first): the same file again is
            # that task's older annotation. Anything else naming the same image cannot be placed.
            if tool == "label_studio" and base == first_name[iid]:
                continue
            missing.append(f"image {e.get('id')} {e.get('file_name')!r}: image {iid} is already "
                           f"{first_name[iid]!r} in this export")
            continue
        if e.get("id") in picked or isinstance(e.get("id"), (dict, list)):
            missing.append(f"image {e.get('id')} {e.get('file_name')!r}: its export id is used twice")
            continue
        first_name[iid] = base
        img = images_by_id[iid]
        if e.get("width") and e.get("height") and (e["width"], e["height"]) != (img["width"], img["height"]):
            raise IngestError(f"{path}: image {e.get('id')} {e.get('file_name')!r} is {e['width']}x{e['height']} "
                              f"in the export but {img['width']}x{img['height']} in the dataset")
        picked[e["id"]] = iid
    if missing:
        raise IngestError(f"{path}: refusing the import, {len(missing)} image(s) of the export cannot be placed "
                          f"on an image of the dataset for sure:\n  " + "\n  ".join(missing[:10]) +
                          "\nNothing was changed.")
    boxes: dict[int, list] = {iid: [] for iid in picked.values()}
    unknown = []
    for a in export.get("annotations") or []:
        if not isinstance(a, dict) or isinstance(a.get("image_id"), (dict, list)) or a.get("image_id") not in picked:
            continue
        where = f"annotation {a.get('id')} (image {a.get('image_id')})"
        name = cats.get(a.get("category_id"))
        if name is None:
            unknown.append(f"{where}: category_id {a.get('category_id')} is not in the export's categories")
            continue
        label = canonical_label(name, label_names, where, unknown)
        rot = (a.get("attributes") or {}).get("rotation") if isinstance(a.get("attributes"), dict) else None
        if rot is not None and abs(finite(rot, f"{path}: {where}: rotation")) > 1e-9:
            raise IngestError(f"{path}: {where}: rotated box ({rot} deg); straighten it in the tool")
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise IngestError(f"{path}: {where}: bbox {bbox!r} is not [x, y, w, h]")
        bbox = [finite(v, f"{path}: {where}: bbox {bbox!r}") for v in bbox]
        if label is not None:
            boxes[picked[a["image_id"]]].append((label, bbox, None))
    refuse_unknown(unknown, label_names, path)
    stamp = now_utc()
    return [Review(iid, b, stamp, f"{tool} COCO") for iid, b in boxes.items()]


def apply_reviews(coco: dict, reviews: list[Review]) -> tuple[dict, dict]:
    """The new dataset: each done image gets exactly its review's boxes and verified: true.
    Already-verified images are left exactly as they are."""
    out = copy_coco(coco)
    images = {img["id"]: img for img in out["images"]}
    anns = anns_by_image(out)
    cat = label_ids(out, sorted({b[0] for v in reviews for b in v.boxes}))  # refuses a missing category
    counts = ApplyCounts()
    replaced: dict[int, list[dict]] = {}
    next_ann = next_id(out["annotations"])
    for v in sorted(reviews, key=lambda v: v.image_id):
        img = images[v.image_id]
        if img.get("verified"):
            counts.kept_verified += 1
            continue
        old = {str(a["id"]): a for a in anns.get(v.image_id, [])}
        new = []
        for label, bbox, key in v.boxes:
            prev = old.pop(key, None) if key is not None else None
            if prev is None:  # COCO round trips renumber boxes: an identical box of the label is the same
                key = next((k for k, a in old.items() if a["category_id"] == cat[label] and
                            all(abs(p - q) <= TOL_PX for p, q in zip(a["bbox"], bbox))), None)
                prev = old.pop(key, None) if key is not None else None
            if prev is not None and cat[label] == prev["category_id"] and \
                    all(abs(p - q) <= TOL_PX for p, q in zip(prev["bbox"], bbox)):
                new.append(prev)                       # unchanged: id, origin, score kept
                counts.unchanged_boxes += 1
                continue
            if prev is not None:                       # edited: same id, now the human's box
                a = {"id": prev["id"]}
            else:
                a = {"id": next_ann}
                next_ann += 1
            a.update({"image_id": v.image_id, "category_id": cat[label], "bbox": [float(x) for x in bbox],
                      "area": float(bbox[2] * bbox[3]), "iscrowd": 0, "origin": "human"})
            new.append(a)
            counts.changed_or_new_boxes += 1
        counts.deleted_boxes += len(old)
        replaced[v.image_id] = new
        img["verified"] = True
        img["verified_at"] = v.verified_at
        counts.verified += 1
    if replaced:
        out["annotations"] = [a for a in out["annotations"] if a["image_id"] not in replaced]
        for iid in sorted(replaced):
            out["annotations"].extend(replaced[iid])
        out["annotations"].sort(key=lambda a: (a["image_id"], a["id"]))
    return out, counts.as_dict()
