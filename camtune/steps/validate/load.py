"""Read a dataset for validation without trusting it.

`camtune.core.dataset.load_dataset` refuses a dataset that breaks the schema; validation instead
reports every schema violation as a finding and still runs the other rules on what can be read.
So fields of the wrong type are blanked (None) before the tables are built, and the schema
findings say what was wrong with them.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from camtune.core import dataset as ds_mod
from camtune.steps.validate.findings import Finding

_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")


@dataclass(frozen=True)
class Loaded:
    root: Path
    images: pd.DataFrame       # camtune.core.dataset.IMAGE_COLUMNS, ids Int64 (<NA> when unusable)
    annotations: pd.DataFrame  # ANNOTATION_COLUMNS + label
    categories: pd.DataFrame


def _int_or_none(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) <= 2**53:  # beyond, the float lied
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


def _exact_ids(df: pd.DataFrame, cols) -> pd.DataFrame:
    """Id columns as nullable Int64: exact over the schema's whole range (a float64 column, what
    pandas makes of ints with a null among them, rounds ids above 2**53)."""
    for col in cols:
        df[col] = pd.array([v if ds_mod._is_id(v) else None for v in df[col]], dtype="Int64")
    return df


def _numeric(df: pd.DataFrame, cols) -> pd.DataFrame:
    for col in cols:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
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


# An id must fit int64 (the schema's maximum): tables keep ids as exact nullable Int64, never float.
ID_MAX = 2**63 - 1
MAX_DEPTH = 32              # our documents nest 4 deep; `info` may hold a little more
MAX_ANNOTATIONS_BYTES = 256 * 2**20
_SCAN_CHUNK = 1 << 20


def max_nesting(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest [ / { nesting outside JSON strings, in one vectorised O(n) pass over 1 MiB
    chunks; stops early past `limit`. Exact for valid JSON; the parser rejects the rest."""
    depth = deepest = 0
    in_string = False      # whether the previous chunk ended inside a string
    backslashes = 0        # how many backslashes the previous chunk ended with
    view = memoryview(data)
    for start in range(0, len(data), _SCAN_CHUNK):
        b = np.frombuffer(view[start:start + _SCAN_CHUNK], dtype=np.uint8)
        idx = np.arange(len(b), dtype=np.int32)
        is_bs = b == 92
        last_plain = np.maximum.accumulate(np.where(is_bs, np.int32(-1), idx))  # last non-backslash
        quotes = np.flatnonzero(b == 34)
        before = quotes - 1
        safe = np.maximum(before, 0)
        run = np.where(before >= 0, before - last_plain[safe], 0)          # backslashes right before
        run = run + np.where((before < 0) | (last_plain[safe] < 0), backslashes, 0)
        real = quotes[run % 2 == 0]                                        # unescaped quotes
        brackets = np.flatnonzero((b == 91) | (b == 123) | (b == 93) | (b == 125))
        outside = (np.searchsorted(real, brackets) + in_string) % 2 == 0
        brackets = brackets[outside]
        if len(brackets):
            step = np.where((b[brackets] == 91) | (b[brackets] == 123), 1, -1)
            levels = depth + np.cumsum(step)
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
            if deepest > limit:
                return deepest
        in_string = bool((in_string + len(real)) % 2)
        trailing = len(b) - 1 - int(last_plain[-1]) if len(b) else 0
        backslashes = trailing + backslashes if trailing == len(b) else trailing
    return deepest


def _unreadable(code: str, message: str) -> tuple[None, list[Finding]]:
    return None, [Finding("error", code, message, file=ds_mod.ANNOTATIONS_FILE)]


def read_annotations(root: Path, max_bytes: int = MAX_ANNOTATIONS_BYTES, max_depth: int = MAX_DEPTH):
    """(parsed JSON, None) or (None, [finding]). Never blocks, never reads more than `max_bytes`,
    never recurses deeper than `max_depth`: the file must be a regular file (a FIFO or device
    named annotations.json would block or never end), is opened non-blocking, and its bracket
    depth is scanned before the parser (and jsonschema) recurse into it."""
    try:
        st = os.stat(root)
    except OSError as exc:
        return _dataset_unreadable(root, exc)
    if not stat.S_ISDIR(st.st_mode):
        return None, [Finding("error", "DATASET_UNREADABLE",
                              f"{root} is a {_kind(st.st_mode)}, not a dataset folder")]
    path = root / ds_mod.ANNOTATIONS_FILE
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return _unreadable("ANNOTATIONS_UNREADABLE", f"{path} is a {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            return _unreadable("ANNOTATIONS_TOO_LARGE", f"{path} is {st.st_size} bytes, more than "
                               f"validate.max_annotations_bytes={max_bytes}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())  # what was opened (the path may have been swapped)
            if not stat.S_ISREG(st.st_mode):
                return _unreadable("ANNOTATIONS_UNREADABLE", f"{path} is a {_kind(st.st_mode)}, not a regular file")
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        return _unreadable("ANNOTATIONS_UNREADABLE", f"{path}: file not found")
    except OSError as exc:
        return _unreadable("ANNOTATIONS_UNREADABLE", f"{path}: cannot be read: {_os_reason(exc)}")
    if len(data) > max_bytes:  # it grew after the stat
        return _unreadable("ANNOTATIONS_TOO_LARGE", f"{path} is more than validate.max_annotations_bytes="
                           f"{max_bytes} bytes")
    depth = max_nesting(data, max_depth)
    if depth > max_depth:
        return _unreadable("ANNOTATIONS_TOO_DEEP", f"{path} nests arrays/objects more than {max_depth} deep; "
                           "a dataset needs 4")
    try:
        return json.loads(data), None
    except RecursionError:  # invalid JSON can fool the depth scan; the parser's own guard holds
        return _unreadable("ANNOTATIONS_TOO_DEEP", f"{path} nests arrays/objects too deep")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        return _unreadable("ANNOTATIONS_UNREADABLE", f"{path}: not valid JSON: {exc}")


def _dataset_unreadable(root: Path, exc: OSError):
    what = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read: {_os_reason(exc)}"
    return None, [Finding("error", "DATASET_UNREADABLE", f"dataset folder {root} {what}")]


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISREG, "regular file")):
        if test(mode):
            return name
    return "special file"


def load(root: str | Path, max_bytes: int = MAX_ANNOTATIONS_BYTES) -> tuple[Loaded | None, list[Finding]]:
    """(tables, schema findings). Tables are None only when annotations.json cannot be read."""
    root = Path(root)
    raw, unreadable = read_annotations(root, max_bytes)
    if unreadable:
        return None, unreadable
    findings = schema_findings(raw)
    coco = sanitize(raw)
    del raw
    # a category without a usable id can name nothing (its SCHEMA finding says why); left in, its
    # null key would break the id -> name mapping of camtune.core.dataset.tables
    coco["categories"] = [c for c in coco["categories"] if c["id"] is not None]
    images, anns, cats = ds_mod.tables(coco)
    images = _exact_ids(images, ["id"])
    images = _numeric(images, ["width", "height"])
    anns = _exact_ids(anns, ["id", "image_id", "category_id"])
    cats = _exact_ids(cats, ["id"])
    for col in ("x", "y", "w", "h"):
        anns[col] = anns[col].astype("float64")
    return Loaded(root, images, anns, cats), findings


def image_lookup(images: pd.DataFrame) -> pd.DataFrame:
    """images indexed by id (first record wins when ids repeat; DUP_IMAGE_ID reports the rest)."""
    first = images[images["id"].notna()].drop_duplicates("id")
    return first.set_index("id")


def finite_boxes(anns: pd.DataFrame) -> np.ndarray:
    return np.isfinite(anns[["x", "y", "w", "h"]].to_numpy(dtype="float64")).all(axis=1)
