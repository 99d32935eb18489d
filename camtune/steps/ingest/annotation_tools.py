"""Round trip with the annotation tools: Label Studio and CVAT.

Out (the unverified images, highest review priority first):
- Label Studio: `tasks.json`, a list of tasks `{"data": {"image": URL, "camtune_image_id", ...},
  "predictions": [{"model_version", "score", "result": [...]}]}` whose results are
  `rectanglelabels` regions in PERCENT of the image (`value.x/y/width/height`, `original_width/
  height`), plus `labeling_config.xml` (a RectangleLabels tag with our labels; attribute labels say
  which parent they belong in; `category` = our category id, which LS's COCO export keeps).
- CVAT: a "COCO 1.0" annotation file (`annotations/instances_default.json`, also zipped), the
  images to upload under the same names, and the label constructor JSON. Every file is named
  `ct<image id>_<base name>`: the image id is what the import keys on (base names repeat across
  cameras and folders).

Back (a tool export -> verified annotations):
- Label Studio JSON export: a task is done when it has an annotation that was not cancelled
  (`was_cancelled: false`, LS's "skip" sets it true); its newest such annotation is the truth.
  Tasks with only predictions, or only skipped annotations, are not done and change nothing.
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

import contextlib
import io
import json
import math
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlparse

from camtune.core import atomic
from camtune.core.dataset import UnsafePath, safe_image_path
from camtune.steps.ingest.coco import IngestError, copy_coco, label_ids, next_id

TOL_PX = 1e-3  # px: a box the annotator did not touch comes back equal up to float round trips
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
          "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075"]
LS_FROM, LS_TO = "label", "image"


# ------------------------------------------------------------------ shared

def selection(coco: dict, ranking: list[dict] | None, max_images: int | None = None) -> list[dict]:
    """Unverified images, in review priority order (ranking.json), else by id."""
    unverified = {img["id"]: img for img in coco["images"] if not img.get("verified")}
    order = [e["image_id"] for e in (ranking or []) if e["image_id"] in unverified]
    order += sorted(set(unverified) - set(order))
    chosen = [unverified[i] for i in order]
    return chosen[:max_images] if max_images else chosen


def _names(coco: dict) -> dict[int, str]:
    return {c["id"]: c["name"] for c in coco["categories"]}


def _anns_by_image(coco: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        out.setdefault(a["image_id"], []).append(a)
    return out


def _basename(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).name


def export_name(img: dict) -> str:
    """The flat file name an image has in a tool: `ct<image id>_<base name>`. The id is the
    identity the import keys on; a base name alone can repeat (two cameras each with 0001.jpg)."""
    base = _basename(img["file_name"])
    base = base if base.count(".") else f"{base}.png"
    return f"ct{int(img['id'])}_{base}"


def unique_export_names(images: list[dict]) -> dict[int, str]:
    return {img["id"]: export_name(img) for img in images}


_EXPORT_NAME = re.compile(r"ct([0-9]{1,18})_(.+)")


def image_from_export_name(name: str, images: dict[int, dict]) -> int | None:
    """Our image id from a tool's file name written by `export_name`, or None when the name is not
    one of ours or names an image whose base name differs (a file from another dataset)."""
    m = _EXPORT_NAME.fullmatch(_basename(name))
    if m is None:
        return None
    iid = int(m.group(1))
    img = images.get(iid)
    return iid if img is not None and export_name(img) == m.group(0) else None


def unique_base_names(images: list[dict]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Base name -> image id for the base names only one image has; the repeated ones apart."""
    seen: dict[str, list[int]] = {}
    for img in images:
        seen.setdefault(_basename(img["file_name"]), []).append(img["id"])
    return ({n: ids[0] for n, ids in seen.items() if len(ids) == 1},
            {n: ids for n, ids in seen.items() if len(ids) > 1})


@dataclass
class Verdict:
    """A done image as the tool returned it."""
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


def apply_verdicts(coco: dict, verdicts: list[Verdict]) -> tuple[dict, dict]:
    """The new dataset: each done image gets exactly its verdict's boxes and verified: true.
    Already-verified images are left exactly as they are."""
    out = copy_coco(coco)
    images = {img["id"]: img for img in out["images"]}
    anns = _anns_by_image(out)
    cat = label_ids(out, sorted({b[0] for v in verdicts for b in v.boxes}))  # refuses a missing category
    counts = ApplyCounts()
    replaced: dict[int, list[dict]] = {}
    next_ann = next_id(out["annotations"])
    for v in sorted(verdicts, key=lambda v: v.image_id):
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


def _iso(ts: str | None, fallback: str) -> str:
    if not ts:
        return fallback
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _now() -> str:
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


# ------------------------------------------------------------------ Label Studio out

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
    names, anns = _names(coco), _anns_by_image(coco)
    rank = {e["image_id"]: e for e in ranking or []}
    tasks = []
    for img in images:
        result = [ls_region(a, names[a["category_id"]], img["width"], img["height"])
                  for a in anns.get(img["id"], [])]
        scores = [r["score"] for r in result if "score" in r]
        _checked_file(root, img)
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


# ------------------------------------------------------------------ Label Studio back

def _ls_image_key(task: dict) -> tuple[int | None, str | None]:
    data = task.get("data") or {}
    iid = data.get("camtune_image_id")
    url = data.get("image")
    name = None
    if isinstance(url, str):
        q = parse_qs(urlparse(url).query)
        name = _basename(unquote(q["d"][-1])) if "d" in q else _basename(unquote(urlparse(url).path))
    return (iid if isinstance(iid, int) and not isinstance(iid, bool) else None), name


def _place_by_name(name: str | None, unique: dict[str, int], repeated: dict[str, list[int]],
                   images: dict[int, dict], tool: str) -> tuple[int | None, str]:
    """An item the tool names only by file: ours by the id in the name, else by a base name that
    exactly one image of the dataset has. (None, why) when it cannot be placed for sure."""
    if not name:
        return None, "no file name"
    candidates = [name] + ([_LS_UPLOAD_PREFIX.sub("", name, count=1)] if tool == "label_studio" else [])
    for n in candidates:
        iid = image_from_export_name(n, images)
        if iid is not None:
            return iid, ""
    for n in candidates:
        if n in repeated:
            return None, (f"file name {n!r} is shared by images {repeated[n][:5]}: it cannot say which one "
                          "(use the export camtune wrote, whose names carry the image id)")
    for n in candidates:
        if n in unique:
            return unique[n], ""
    return None, "no image of this dataset has that file name"


def ls_verdicts(export, coco: dict, label_names: list[str], path) -> tuple[list[Verdict], list]:
    """Label Studio's JSON export -> verdicts of the done tasks (and the tasks not done)."""
    if not isinstance(export, list):
        raise IngestError(f"{path}: expected Label Studio's JSON export (a list of tasks), got "
                          f"{type(export).__name__}; for its COCO export use --format coco")
    images = {img["id"]: img for img in coco["images"]}
    unique, repeated = unique_base_names(coco["images"])
    verdicts, not_done, unknown, missing = [], [], [], []
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
            if name is not None and name != _basename(images[iid]["file_name"]) and \
                    image_from_export_name(name, images) != iid:
                missing.append(f"task {tid} ({shown}): camtune_image_id {iid} is "
                               f"{images[iid]['file_name']!r}, not this task's image")
                continue
        else:
            iid, why = _place_by_name(name, unique, repeated, images, "label_studio")
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
        verdicts.append(Verdict(iid, boxes, _iso(ann.get("updated_at") or ann.get("created_at"), _now()),
                                f"task {tid}"))
    if missing:
        raise IngestError(f"{path}: refusing the import, {len(missing)} task(s) name no image of this dataset "
                          f"for sure:\n  " + "\n  ".join(missing[:10]) +
                          "\nExport from the project made by export-ls; nothing was changed.")
    refuse_unknown(unknown, label_names, path)
    return verdicts, not_done


_LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def coco_verdicts(export, coco: dict, label_names: list[str], path, tool: str) -> list[Verdict]:
    """A COCO export (Label Studio's or CVAT's) -> a verdict for every image in it."""
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
        base = _basename(e.get("file_name", ""))
        if tool == "cvat":  # our CVAT export names every file by image id: nothing else is placed
            iid = image_from_export_name(base, images_by_id)
            why = "not a file name camtune's export-cvat wrote (ct<image id>_<name>) for this dataset"
        else:
            iid, why = _place_by_name(base, unique, repeated, images_by_id, tool)
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
    stamp = _now()
    return [Verdict(iid, b, stamp, f"{tool} COCO") for iid, b in boxes.items()]


# ------------------------------------------------------------------ CVAT out

def cvat_coco(coco: dict, images: list[dict], names: dict[int, str]) -> dict:
    """COCO 1.0 as CVAT writes and reads it (datumaro's COCO): licenses, info, categories with
    supercategory, images with license/flickr_url/coco_url/date_captured, annotations with
    segmentation [], iscrowd, attributes {occluded, rotation}."""
    anns = _anns_by_image(coco)
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


def _checked_file(root: Path, img: dict) -> Path:
    """The image's file through the checked resolver: never a file outside the dataset folder
    (absolute, `..`, a symlink leading out) in an upload folder or a Label Studio URL."""
    try:
        path = safe_image_path(root, img.get("file_name"))
    except UnsafePath as exc:
        raise IngestError(f"image {img.get('id')}: {exc}; run validate, nothing was exported") from None
    if not path.is_file():
        raise IngestError(f"image {img.get('id')}: {path} is not a file; run validate, nothing was exported")
    return path


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


# what the exports wrote before they carried the owner file: such a folder is still ours
CVAT_FILES = frozenset({"annotations", "coco_1.0_annotations.zip", "cvat_labels.json"})
LS_FILES = frozenset({"tasks.json", "labeling_config.xml"})


@contextlib.contextmanager
def _owned_output(out_dir: Path, writer: str, legacy: frozenset[str]):
    """The export's folder, replaced only when camtune wrote it (a user's --out is never wiped)."""
    try:
        # "images" may sit beside the files an older CVAT export always wrote, never alone
        with atomic.output_dir(out_dir, owner=writer, legacy_names=legacy | {"images"},
                               legacy_required=legacy) as tmp:
            yield tmp
    except atomic.NotOurs as exc:
        raise IngestError(str(exc)) from None


def write_cvat_export(root: Path, coco: dict, images: list[dict], out_dir: Path, label_names, attribute_parents):
    names = unique_export_names(images)
    doc = cvat_coco(coco, images, names)
    with _owned_output(out_dir, "export-cvat", CVAT_FILES) as tmp:
        atomic.write_json(tmp / "annotations" / "instances_default.json", doc, indent=None)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("annotations/instances_default.json", json.dumps(doc))
        atomic.write_bytes(tmp / "coco_1.0_annotations.zip", buf.getvalue())
        atomic.write_json(tmp / "cvat_labels.json", cvat_labels(label_names, attribute_parents))
        for img in images:
            _link_or_copy(_checked_file(root, img), tmp / "images" / names[img["id"]])
    return doc


def write_ls_export(root: Path, coco: dict, images: list[dict], ranking, out_dir: Path, *, model_version: str,
                    url_prefix: str, document_root: str, label_names, attribute_parents):
    tasks = ls_tasks(root, coco, images, ranking, model_version=model_version, url_prefix=url_prefix,
                     document_root=document_root)
    with _owned_output(out_dir, "export-ls", LS_FILES) as tmp:
        atomic.write_json(tmp / "tasks.json", tasks, indent=None)
        atomic.write_text(tmp / "labeling_config.xml", ls_labeling_config(coco, label_names, attribute_parents))
    return tasks
