"""Read a dataset for validation without trusting it.

`camtune.dataset.load_dataset` refuses a dataset that breaks the schema; validation instead
reports every schema violation as a finding and still runs the other rules on what can be read.
So fields of the wrong type are blanked (None) before the tables are built, and the schema
findings say what was wrong with them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from camtune import dataset as ds_mod
from camtune.validation.findings import Finding

_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")


@dataclass(frozen=True)
class Loaded:
    root: Path
    coco: dict                 # the sanitised COCO dict
    images: pd.DataFrame       # camtune.dataset.IMAGE_COLUMNS, ids numeric (NaN when unusable)
    annotations: pd.DataFrame  # ANNOTATION_COLUMNS + label
    categories: pd.DataFrame


def _int_or_none(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _str_or_none(v):
    return v if isinstance(v, str) else None


def _num_or_none(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _records(coco: dict, key: str) -> list[dict]:
    items = coco.get(key)
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def sanitize(coco) -> dict:
    """A copy where every field of the wrong type is None (never raises)."""
    if not isinstance(coco, dict):
        coco = {}
    images = []
    for r in _records(coco, "images"):
        images.append({
            "id": _int_or_none(r.get("id")),
            "file_name": _str_or_none(r.get("file_name")),
            "width": _int_or_none(r.get("width")),
            "height": _int_or_none(r.get("height")),
            "user_id": _str_or_none(r.get("user_id")),
            "camera": _str_or_none(r.get("camera")),
            "captured_at": _str_or_none(r.get("captured_at")),
            "verified": r.get("verified") if isinstance(r.get("verified"), bool) else False,
            "verified_at": _str_or_none(r.get("verified_at")),
            "condition": _str_or_none(r.get("condition")),
            "sha256": _str_or_none(r.get("sha256")),
        })
    annotations = []
    for r in _records(coco, "annotations"):
        b = r.get("bbox")
        bbox = [_num_or_none(v) for v in b] if isinstance(b, list) and len(b) == 4 else None
        annotations.append({
            "id": _int_or_none(r.get("id")),
            "image_id": _int_or_none(r.get("image_id")),
            "category_id": _int_or_none(r.get("category_id")),
            "bbox": bbox,
        })
    categories = []
    for r in _records(coco, "categories"):
        parents = r.get("attribute_of")
        categories.append({
            "id": _int_or_none(r.get("id")),
            "name": _str_or_none(r.get("name")),
            "attribute_of": [p for p in parents if isinstance(p, str)] if isinstance(parents, list) else [],
        })
    return {"images": images, "annotations": annotations, "categories": categories}


def _numeric_ids(df: pd.DataFrame, cols) -> pd.DataFrame:
    for col in cols:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def schema_findings(raw) -> list[Finding]:
    """Each JSON Schema violation as a SCHEMA finding naming the record's id when it has one."""
    out = []
    for path, message in ds_mod.schema_errors(raw):
        image_id = annotation_id = None
        parts = _PATH_PART.findall(path)
        if len(parts) >= 2 and parts[1][1] and isinstance(raw, dict):
            key, idx = parts[0][0], int(parts[1][1])
            items = raw.get(key)
            rec = items[idx] if isinstance(items, list) and idx < len(items) else None
            rid = rec.get("id") if isinstance(rec, dict) else None
            if key == "images":
                image_id = _int_or_none(rid)
            elif key == "annotations":
                annotation_id = _int_or_none(rid)
                image_id = _int_or_none(rec.get("image_id")) if isinstance(rec, dict) else None
        out.append(Finding("error", "SCHEMA", f"{path}: {message}", image_id, annotation_id,
                           ds_mod.ANNOTATIONS_FILE))
    return out


def load(root: str | Path) -> tuple[Loaded | None, list[Finding]]:
    """(tables, schema findings). Tables are None only when annotations.json cannot be read."""
    root = Path(root)
    path = root / ds_mod.ANNOTATIONS_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, [Finding("error", "ANNOTATIONS_UNREADABLE", f"{path}: file not found",
                              file=ds_mod.ANNOTATIONS_FILE)]
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        return None, [Finding("error", "ANNOTATIONS_UNREADABLE", f"{path}: not valid JSON: {exc}",
                              file=ds_mod.ANNOTATIONS_FILE)]
    findings = schema_findings(raw)
    coco = sanitize(raw)
    # a category without a usable id can name nothing (its SCHEMA finding says why); left in, its
    # null key would break the id -> name mapping of camtune.dataset.tables
    coco["categories"] = [c for c in coco["categories"] if c["id"] is not None]
    images, anns, cats = ds_mod.tables(coco)
    images = _numeric_ids(images, ["id", "width", "height"])
    anns = _numeric_ids(anns, ["id", "image_id", "category_id"])
    cats = _numeric_ids(cats, ["id"])
    for col in ("x", "y", "w", "h"):
        anns[col] = anns[col].astype("float64")
    return Loaded(root, coco, images, anns, cats), findings


def image_lookup(images: pd.DataFrame) -> pd.DataFrame:
    """images indexed by id (first record wins when ids repeat; DUP_IMAGE_ID reports the rest)."""
    first = images[images["id"].notna()].drop_duplicates("id")
    return first.set_index("id")


def finite_boxes(anns: pd.DataFrame) -> np.ndarray:
    return np.isfinite(anns[["x", "y", "w", "h"]].to_numpy(dtype="float64")).all(axis=1)
