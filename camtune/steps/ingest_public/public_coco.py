"""A public COCO-format detection dataset -> a global pool in our dataset format.

For a household training at home there is no service and no pool of other users' images: the
base model and the global evaluation set come from a public dataset (COCO, an Open Images or
Roboflow export in COCO format) instead. This module turns one such source into a pool folder
`<out>/<name>/` (`annotations.json` + `images/`) whose every image belongs to one pseudo-user,
`public.<name>` (`config.PUBLIC_USER_PREFIX`; a ':' would not be a safe path segment).

Rules, in order (all pure functions of the source json and the params):
  * categories are mapped by name (`map`: source category -> our label, several may map to one);
    annotations of unmapped categories are dropped;
  * "every object labelled" (our datasets are complete for `labels.names`) is kept by DROPPING an
    image that holds an object we would detect but that the mapping leaves unlabelled:
      - an annotation of a `tracked` source category that is not mapped (COCO's `truck` when the
        user maps only `car=car`: a truck in the image would teach "truck-shaped car = background"),
      - a crowd annotation (`iscrowd: 1`) of a mapped or tracked category (many unboxed objects),
      - a box of a mapped category with no area inside the image.
    Keeping such images with ignore regions would need an "ignore" notion in the training
    records that Model Garden's RetinaNet parser does not have (it only skips crowd boxes), so
    dropping is the rule that the rest of the pipeline keeps exactly;
  * images left with no box of ours are negatives, taken up to `negative_share` of the pool;
  * images are taken in the order of a salted hash of the source image id (`salt`), up to
    `max_images`: the same source and params give the same pool, and raising `max_images` only
    adds images;
  * per image the source's `license`, `url`, `coco_url`, `flickr_url` and `date_captured` are kept
    (and the source's top-level `licenses` and `info`), so attribution is never lost.

Writing (`write_pool`) is resumable and never rewrites a file it already wrote: images are
hard-linked (or copied through a temporary sibling) only when missing, `annotations.json` and
`ingest.json` are written atomically and only when their bytes change. Our labels that no source
category maps to (e.g. `face` from COCO) are listed in `ingest.json` as `unlabelled_labels`.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from camtune.core import atomic
from camtune.core.config import PUBLIC_USER_PREFIX, IngestPublicParams, LabelParams
from camtune.core.dataset import ANNOTATIONS_FILE, DatasetError, file_sha256

REPORT_FILE = "ingest.json"
IMAGES_DIR = "images"
KEPT_IMAGE_FIELDS = ("license", "url", "coco_url", "flickr_url", "date_captured")
_EPOCH = "1970-01-01T00:00:00Z"


def public_user(name: str) -> str:
    return f"{PUBLIC_USER_PREFIX}{name}"


def parse_map(pairs: list[str]) -> dict[str, str]:
    """['truck=car', ...] -> {'truck': 'car'}; the left side is the source's category name."""
    out: dict[str, str] = {}
    for pair in pairs:
        src, sep, ours = pair.partition("=")
        if not sep or not src.strip() or not ours.strip():
            raise DatasetError(f"--map expects source=ours, got {pair!r}")
        out[src.strip()] = ours.strip()
    return out


def read_source(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            coco = json.load(fh)
    except FileNotFoundError:
        raise DatasetError(f"{path}: source annotations not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise DatasetError(f"{path}: not a COCO detection file (needs lists 'images', "
                           f"'annotations' and 'categories')")
    return coco


@dataclass(frozen=True)
class Plan:
    """What the pool will hold: our COCO dict, which source file feeds which pool file, stats."""
    coco: dict
    files: list[tuple[str, str]]      # (source file_name, pool file_name), in image id order
    stats: dict = field(default_factory=dict)


def _iso(date_captured) -> str:
    """COCO's '2013-11-14 11:18:45' (no zone: taken as UTC) -> ISO 8601; unknown -> the epoch."""
    if isinstance(date_captured, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
            try:
                dt = datetime.strptime(date_captured.rstrip("Z"), fmt).replace(tzinfo=timezone.utc)
                return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                continue
    return _EPOCH


def _order_key(salt: str, image_id: int) -> bytes:
    return hashlib.blake2b(f"{salt}\0{image_id}".encode(), digest_size=8).digest()


def plan(coco: dict, *, params: IngestPublicParams, labels: LabelParams, mapping: dict[str, str],
         tracked: list[str], source: str = "source") -> Plan:
    """Choose the images and rewrite their annotations (module docstring for the rules).
    `source` names the json in messages; nothing is read from or written to disk."""
    names = list(labels.names)
    unknown_targets = sorted({v for v in mapping.values() if v not in names})
    if unknown_targets:
        raise DatasetError(f"--map targets not in labels.names {names}: {unknown_targets}")

    cat_name: dict[int, str] = {}
    for i, c in enumerate(coco["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise DatasetError(f"{source}: categories[{i}] needs an integer 'id' and a 'name'")
        cat_name[c["id"]] = c["name"]
    src_names = set(cat_name.values())
    missing = sorted(set(mapping) - src_names)
    if missing:
        raise DatasetError(f"{source}: --map names categories the source does not have: {missing} "
                           f"(it has {sorted(src_names)})")
    untracked_missing = sorted(set(tracked) - src_names)
    our_id = {n: k + 1 for k, n in enumerate(names)}
    # per source category id: our category id (mapped), -1 tracked but unmapped, 0 ignored
    role = {cid: (our_id[mapping[n]] if n in mapping else (-1 if n in tracked else 0))
            for cid, n in cat_name.items()}

    images: dict[int, dict] = {}
    for i, im in enumerate(coco["images"]):
        iid = im.get("id") if isinstance(im, dict) else None
        if not isinstance(iid, int) or iid < 0:
            raise DatasetError(f"{source}: images[{i}] has no non-negative integer 'id'")
        if iid in images:
            raise DatasetError(f"{source}: duplicate image id {iid}")
        fn, w, h = im.get("file_name"), im.get("width"), im.get("height")
        if not isinstance(fn, str) or not fn or Path(fn).is_absolute() or ".." in Path(fn).parts:
            raise DatasetError(f"{source}: image {iid}: 'file_name' must be a relative path, got {fn!r}")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise DatasetError(f"{source}: image {iid}: 'width'/'height' must be positive integers")
        images[iid] = im

    boxes: dict[int, list[dict]] = {}
    incomplete: dict[int, str] = {}   # image id -> first reason
    dropped_anns = 0
    for a in coco["annotations"]:
        aid = a.get("id") if isinstance(a, dict) else None
        iid, cid = (a.get("image_id"), a.get("category_id")) if isinstance(a, dict) else (None, None)
        if not isinstance(aid, int) or aid < 0:
            raise DatasetError(f"{source}: an annotation of image {iid!r} has no non-negative integer 'id'")
        if iid not in images:
            raise DatasetError(f"{source}: annotation {aid} refers to image {iid!r}, which is not in 'images'")
        if cid not in role:
            raise DatasetError(f"{source}: annotation {aid} has unknown category_id {cid!r}")
        r = role[cid]
        if r == 0:
            dropped_anns += 1
            continue
        if r < 0:
            incomplete.setdefault(iid, f"unmapped {cat_name[cid]}")
            continue
        if a.get("iscrowd", 0):
            incomplete.setdefault(iid, f"crowd {cat_name[cid]}")
            continue
        bb = a.get("bbox")
        if not (isinstance(bb, list) and len(bb) == 4 and all(isinstance(v, (int, float)) for v in bb)):
            raise DatasetError(f"{source}: annotation {aid} (image {iid}): 'bbox' must be 4 numbers")
        im = images[iid]
        x0, y0 = max(0.0, float(bb[0])), max(0.0, float(bb[1]))
        x1, y1 = min(float(im["width"]), float(bb[0] + bb[2])), min(float(im["height"]), float(bb[1] + bb[3]))
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            incomplete.setdefault(iid, f"empty {cat_name[cid]} box")
            continue
        w, h = round(x1 - x0, 2), round(y1 - y0, 2)
        boxes.setdefault(iid, []).append({
            "id": aid, "image_id": iid, "category_id": r, "bbox": [round(x0, 2), round(y0, 2), w, h],
            "area": round(w * h, 2), "iscrowd": 0})

    complete = [i for i in images if i not in incomplete]
    pos = sorted((i for i in complete if i in boxes), key=lambda i: _order_key(params.salt, i))
    neg = sorted((i for i in complete if i not in boxes), key=lambda i: _order_key(params.salt, i))
    n_max, share = params.max_images, params.negative_share
    n_pos = min(len(pos), n_max - min(len(neg), int(share * n_max)))
    # negatives: at most `share` of the pool actually written, and within max_images
    n_neg = min(len(neg), n_max - n_pos, int(share / (1 - share) * n_pos + 1e-9))
    chosen = sorted(pos[:n_pos] + neg[:n_neg])

    user = public_user(params.name)
    out_images, out_anns, files = [], [], []
    for iid in chosen:
        im = images[iid]
        dest = f"{IMAGES_DIR}/{im['file_name']}"
        rec = {"id": iid, "file_name": dest, "width": im["width"], "height": im["height"],
               "user_id": user, "camera": params.name, "captured_at": _iso(im.get("date_captured")),
               "verified": True, "verified_at": None, "condition": None, "sha256": None,
               "source_file_name": im["file_name"]}
        rec.update({k: im[k] for k in KEPT_IMAGE_FIELDS if k in im})
        out_images.append(rec)
        out_anns.extend(boxes.get(iid, []))
        files.append((im["file_name"], dest))
    categories = [{"id": our_id[n], "name": n, "attribute_of": list(labels.attribute_parents.get(n, []))}
                  for n in names]
    reasons: dict[str, int] = {}
    for r in incomplete.values():
        reasons[r] = reasons.get(r, 0) + 1
    per_label = {n: 0 for n in names}
    for a in out_anns:
        per_label[names[a["category_id"] - 1]] += 1
    stats = {
        "source_images": len(images), "source_annotations": len(coco["annotations"]),
        "annotations_of_unmapped_categories": dropped_anns,
        "dropped_incomplete": len(incomplete), "dropped_incomplete_by_reason": dict(sorted(reasons.items())),
        "candidates": {"positive": len(pos), "negative": len(neg)},
        "images": len(chosen), "positives": n_pos, "negatives": n_neg, "boxes": len(out_anns),
        "boxes_per_label": per_label,
        "unlabelled_labels": [n for n in names if n not in set(mapping.values())],
        "tracked_not_in_source": untracked_missing,
    }
    out = {
        "info": {"description": f"public source {params.name!r} imported by camtune",
                 "source_info": coco.get("info"), "user_id": user, "map": dict(sorted(mapping.items())),
                 "tracked": sorted(tracked)},
        "licenses": coco.get("licenses") or [],
        "images": out_images, "annotations": out_anns, "categories": categories,
    }
    return Plan(out, files, stats)


def _place(src: Path, dest: Path, link: str) -> bool:
    """Put `src` at `dest` unless it is there already; -> whether a file was written."""
    if dest.exists():
        if dest.stat().st_size != src.stat().st_size:
            raise DatasetError(f"{dest}: already in the pool but differs from {src} (size); it is "
                               f"never overwritten: delete it to import it again")
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link == "hardlink":
        try:
            os.link(src, dest)   # atomic: the name appears with the whole file behind it
            return True
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    atomic.copy_file(src, dest)
    return True


POOL_WRITER = "ingest public"


def _ours_in_pool(out_dir: Path) -> set[str]:
    """The files an earlier import wrote into `out_dir` (its manifest, the owner file), so only
    those are ever removed. A non-empty folder camtune did not write is refused, named."""
    if not os.path.lexists(out_dir):
        return set()
    try:
        atomic.check_ours(out_dir, POOL_WRITER)
    except atomic.NotOurs:
        legacy = None  # a pool written before the manifest: its annotations.json says it is ours
        try:
            doc = json.loads((out_dir / ANNOTATIONS_FILE).read_text())
            if str((doc.get("info") or {}).get("description", "")).endswith("imported by camtune"):
                legacy = {im["file_name"] for im in doc["images"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        if legacy is None:
            raise DatasetError(f"{out_dir}: exists, is not empty and has no {atomic.OWNER_FILE}: it was not "
                               "written by camtune's public import, whose clean-up would delete files in it. "
                               "Set ingest_public.out / name to a new or empty folder; nothing was changed.") from None
        return {f for f in legacy if isinstance(f, str)}
    owner = out_dir / atomic.OWNER_FILE
    if not owner.is_file():
        return set()
    try:
        files = json.loads(owner.read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        raise DatasetError(f"{owner}: unreadable manifest; nothing was changed (delete the folder to import "
                           "afresh)") from None
    return {f for f in files if isinstance(f, str)}


def _write_manifest(out_dir: Path, files: set[str]) -> None:
    """The owner file listing the pool's files; rewritten only when the list changes."""
    path = out_dir / atomic.OWNER_FILE
    data = (json.dumps({"files": sorted(files), "writer": POOL_WRITER}, sort_keys=True) + "\n").encode()
    if not path.is_file() or path.read_bytes() != data:
        atomic.write_bytes(path, data)


def write_pool(p: Plan, *, images_dir: str | Path, out_dir: str | Path, link: str = "hardlink",
               progress: bool = True) -> dict:
    """Materialise a plan into `out_dir`. Every source image is checked before anything is
    written; then missing pool images are linked/copied (resumable), images of an older plan that
    are no longer chosen are removed, and the json files are (re)written atomically when changed."""
    from tqdm import tqdm

    images_dir, out_dir = Path(images_dir), Path(out_dir)
    by_id = {im["file_name"]: im for im in p.coco["images"]}
    missing = [(by_id[d]["id"], images_dir / s) for s, d in p.files if not (images_dir / s).is_file()]
    if missing:
        listing = ", ".join(f"image {i}: {path}" for i, path in missing[:5])
        raise DatasetError(f"{len(missing)} source image file(s) not found under {images_dir} "
                           f"({listing}{', ...' if len(missing) > 5 else ''}); nothing was written")
    before = _ours_in_pool(out_dir)
    wanted_names = {d for _, d in p.files}
    # the manifest first: a run killed while placing still knows every file it may have written
    _write_manifest(out_dir, before | wanted_names)
    # a resumed run trusts the sha256 it recorded for a file it finds in place (pool files are
    # never rewritten; _place has checked the size against the source)
    known = {}
    try:
        known = {im["file_name"]: im.get("sha256")
                 for im in json.loads((out_dir / ANNOTATIONS_FILE).read_text())["images"]}
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        pass
    written = 0
    for s, d in tqdm(p.files, desc=f"import {out_dir.name}", unit="img", disable=not progress,
                     mininterval=1.0):
        dest = out_dir / d
        new = _place(images_dir / s, dest, link)
        written += new
        by_id[d]["sha256"] = (not new and known.get(d)) or file_sha256(dest)
    removed = 0
    root = out_dir.resolve()
    for name in sorted(before - wanted_names):  # only what an earlier import wrote and listed
        f = out_dir / name
        inside = os.path.normpath(os.path.join(root, name)).startswith(str(root) + os.sep)
        if inside and name.startswith(IMAGES_DIR + "/") and not os.path.isabs(name) and \
                (f.is_file() or f.is_symlink()):
            f.unlink()
            removed += 1
    changed = []
    for name, obj in ((ANNOTATIONS_FILE, p.coco), (REPORT_FILE, {**p.stats, "user_id": p.coco["info"]["user_id"]})):
        data = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != data:
            atomic.write_bytes(path, data)
            changed.append(name)
    _write_manifest(out_dir, wanted_names)
    return {"out_dir": str(out_dir), "images_written": written, "images_kept": len(p.files) - written,
            "images_removed": removed, "files_rewritten": changed, **p.stats}


def ingest(params: IngestPublicParams, labels: LabelParams, *, progress: bool = True) -> dict:
    """params -> pool folder `<out>/<name>`: read, plan, write. DatasetError on bad input."""
    if not params.annotations or not params.images:
        raise DatasetError("ingest_public.annotations and ingest_public.images must be set "
                           "(--annotations FILE --images DIR)")
    if not params.map:
        raise DatasetError("ingest_public.map is empty: map at least one source category (--map src=ours)")
    if not Path(params.images).is_dir():
        raise DatasetError(f"{params.images}: source images folder not found")
    coco = read_source(params.annotations)
    p = plan(coco, params=params, labels=labels, mapping=dict(params.map), tracked=list(params.tracked),
             source=str(params.annotations))
    if not p.files:
        raise DatasetError(f"{params.annotations}: no image left after mapping {dict(params.map)} "
                           f"(dropped as incompletely labelled: {p.stats['dropped_incomplete']})")
    return write_pool(p, images_dir=params.images, out_dir=Path(params.out) / params.name,
                      link=params.link, progress=progress)
