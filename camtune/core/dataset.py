"""The dataset format: COCO detection JSON plus camera fields (schemas/dataset.schema.json).

A dataset is a folder: `annotations.json` + `images/`. `load_dataset` returns pandas tables,
which every step works on (vectorised), and `to_coco` turns a subset back into COCO JSON
(for pycocotools, or as a manifest another tool can read).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from camtune.core.config import ROOT

DATASET_SCHEMA_PATH = ROOT / "schemas" / "dataset.schema.json"
ANNOTATIONS_FILE = "annotations.json"

IMAGE_COLUMNS = [
    "id", "file_name", "width", "height", "user_id", "camera", "captured_at",
    "verified", "verified_at", "condition", "sha256",
]
ANNOTATION_COLUMNS = ["id", "image_id", "category_id", "x", "y", "w", "h"]


class DatasetError(ValueError):
    """The dataset cannot be read at all; the message names the file and what is wrong."""


class UnsafePath(DatasetError):
    """A file_name that would read outside the dataset folder; `code` is validate's rule."""

    def __init__(self, message: str, code: str = "FILE_TRAVERSAL"):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # pickled across task-runner processes with its code
        return (type(self), (str(self), self.code))


# errno -> (rule, what to tell the user); anything else reading a path is FILE_UNREADABLE
_OS_ERRORS = {
    errno.ENOENT: ("FILE_MISSING", "no such file"),
    errno.ENOTDIR: ("FILE_MISSING", "a part of the path is not a folder"),
    errno.ENAMETOOLONG: ("FILE_NAME_TOO_LONG", "the name is longer than the file system allows"),
    errno.ELOOP: ("FILE_SYMLINK_LOOP", "too many levels of symbolic links (a symlink loop)"),
    errno.EACCES: ("FILE_UNREADABLE", "permission denied"),
    errno.EPERM: ("FILE_UNREADABLE", "operation not permitted"),
}


def os_error_finding(exc: OSError) -> tuple[str, str]:
    """(rule, reason) for an OSError met while reading a path the dataset names."""
    rule, reason = _OS_ERRORS.get(exc.errno, ("FILE_UNREADABLE", exc.strerror or type(exc).__name__))
    return rule, reason


def _q(name: str) -> str:
    """A file name for a message: quoted, escaped, at most 100 characters."""
    text = repr(name)
    return text if len(text) <= 100 else text[:80] + f"... (+{len(text)} chars in all)"


def resolve_inside(root: Path, file_name: str) -> tuple[Path | None, str | None, str | None]:
    """(path, code, message): the file's path when it stays inside `root` (no absolute path, no
    `..`, no symlink on the way leading out), else validate's rule code and a message. The one
    path check of every reader of dataset files: validate, train_base, evaluate, export,
    suggest, the report, the annotation tool exports."""
    if "\x00" in file_name:
        return None, "FILE_TRAVERSAL", "file_name contains a NUL byte"
    try:
        os.fsencode(file_name)
    except UnicodeError:  # a lone surrogate (JSON allows "\udc80") names no file
        return None, "FILE_MISSING", f"file_name {_q(file_name)} cannot be a file name (invalid Unicode)"
    if PurePosixPath(file_name).is_absolute() or PureWindowsPath(file_name).is_absolute() \
            or PureWindowsPath(file_name).drive:
        return None, "FILE_ABSOLUTE", f"file_name {_q(file_name)} is an absolute path"
    if ".." in PurePosixPath(file_name.replace("\\", "/")).parts:
        return None, "FILE_TRAVERSAL", f"file_name {_q(file_name)} contains '..'"
    path = root / file_name
    try:
        real_root = root.resolve()
        real = path.resolve()  # follows every symlink on the way, including of parent folders
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        return None, "FILE_SYMLINK_LOOP", f"{_q(file_name)}: too many levels of symbolic links (a symlink loop)"
    except OSError as exc:
        code, reason = os_error_finding(exc)
        return None, code, f"{_q(file_name)}: {reason}"
    if real != real_root and real_root not in real.parents:
        return None, "FILE_SYMLINK_OUT", f"file_name {_q(file_name)} resolves outside the dataset folder, to {real}"
    return path, None, None


def safe_image_path(root: str | Path, file_name) -> Path:
    """`root / file_name` checked by `resolve_inside`; UnsafePath naming it otherwise."""
    if not isinstance(file_name, str):
        raise UnsafePath(f"{root}: file_name {file_name!r} is not a string", "FILE_MISSING")
    path, code, msg = resolve_inside(Path(root), file_name)
    if code:
        raise UnsafePath(f"{root}: {msg}", code)
    return path



@dataclass(frozen=True)
class Dataset:
    root: Path
    images: pd.DataFrame       # one row per image, IMAGE_COLUMNS
    annotations: pd.DataFrame  # one row per box, ANNOTATION_COLUMNS + "label"
    categories: pd.DataFrame   # id, name, attribute_of

    @property
    def annotations_path(self) -> Path:
        return self.root / ANNOTATIONS_FILE

    def image_path(self, file_name: str) -> Path:
        """The file's path, checked: never outside the dataset folder (UnsafePath)."""
        return safe_image_path(self.root, file_name)

    def subset(self, image_ids) -> "Dataset":
        ids = pd.Index(image_ids)
        images = self.images[self.images["id"].isin(ids)].reset_index(drop=True)
        anns = self.annotations[self.annotations["image_id"].isin(ids)].reset_index(drop=True)
        return Dataset(self.root, images, anns, self.categories)

    def verified(self) -> "Dataset":
        return self.subset(self.images.loc[self.images["verified"], "id"])

    def of_user(self, user_id: str) -> "Dataset":
        return self.subset(self.images.loc[self.images["user_id"] == user_id, "id"])


def read_json(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from None


def schema_errors(coco: dict) -> list[tuple[str, str]]:
    """JSON Schema findings as (json-path, message); empty when valid."""
    import jsonschema

    schema = json.loads(DATASET_SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    # jsonschema puts the offending value's repr in a type error: for the root or a whole table
    # that is the size of the dataset. Say those ourselves and let jsonschema see small values.
    out = []
    if not isinstance(coco, dict):
        return [("<root>", f"expected a JSON object with images, annotations and categories, "
                           f"got {_json_type(coco)}")]
    shallow = dict(coco)
    for key in ("images", "annotations", "categories"):
        if key in shallow and not isinstance(shallow[key], list):
            out.append((f".{key}", f"expected an array, got {_json_type(shallow[key])}"))
            del shallow[key]
            shallow[key] = [{"id": 0, "name": "-"}] if key == "categories" else []  # no knock-on errors
    coco = shallow
    for err in sorted(validator.iter_errors(coco), key=lambda e: list(map(str, e.absolute_path))):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append((path or "<root>", err.message))
    return out


def _json_type(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _is_id(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and -2**63 <= v < 2**63


def id_column(values: list) -> pd.Series | pd.api.extensions.ExtensionArray:
    """Ids kept exact: int64, nullable Int64 when some are missing, object when some are not ids
    at all; never float64, which is what pandas makes of ints with a null and rounds above 2**53."""
    values = list(values)
    if all(_is_id(v) for v in values):
        return pd.array(values, dtype="int64") if values else pd.array([], dtype="int64")
    if all(v is None or _is_id(v) for v in values):
        return pd.array(values, dtype="Int64")
    return pd.array(values, dtype=object)


def tables(coco: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """COCO dict -> (images, annotations, categories) tables. Tolerant: missing optional fields
    become nulls, so validation can report on them instead of crashing here."""
    records = coco.get("images") or []
    images = pd.DataFrame(records, columns=None)
    for col in IMAGE_COLUMNS:
        if col not in images:
            images[col] = None
    images = images[IMAGE_COLUMNS].copy()
    images["id"] = id_column(r.get("id") for r in records)
    images["verified"] = images["verified"].fillna(False).astype(bool)

    raw = coco.get("annotations") or []
    bbox = np.full((len(raw), 4), np.nan, dtype="float64")
    for i, a in enumerate(raw):
        b = a.get("bbox")
        if isinstance(b, (list, tuple)) and len(b) == 4:
            bbox[i] = [np.nan if v is None or isinstance(v, (str, bool)) else v for v in b]
    anns = pd.DataFrame(
        {
            "id": id_column(a.get("id") for a in raw),
            "image_id": id_column(a.get("image_id") for a in raw),
            "category_id": id_column(a.get("category_id") for a in raw),
            "x": bbox[:, 0], "y": bbox[:, 1], "w": bbox[:, 2], "h": bbox[:, 3],
        }
    )
    cats = pd.DataFrame(coco.get("categories") or [])
    for col in ("id", "name", "attribute_of"):
        if col not in cats:
            cats[col] = None
    cats = cats[["id", "name", "attribute_of"]].copy()
    cats["id"] = id_column(c.get("id") for c in (coco.get("categories") or []))
    cats["attribute_of"] = cats["attribute_of"].apply(lambda v: list(v) if isinstance(v, list) else [])
    names = dict(zip(cats["id"], cats["name"]))
    anns["label"] = anns["category_id"].map(names)
    return images, anns, cats


def load_dataset(root: str | Path, *, check_schema: bool = True) -> Dataset:
    """Read `<root>/annotations.json`. With check_schema, a schema violation is a DatasetError
    that names the file and the JSON path (the validate step reports them as findings instead)."""
    root = Path(root)
    coco = read_json(root / ANNOTATIONS_FILE)
    if check_schema:
        errs = schema_errors(coco)
        if errs:
            listing = "\n  ".join(f"{p}: {m}" for p, m in errs[:20])
            raise DatasetError(f"{root / ANNOTATIONS_FILE}: does not match the dataset schema:\n  {listing}")
    images, anns, cats = tables(coco)
    return Dataset(root, images, anns, cats)


def to_coco(ds: Dataset, *, label_names: list[str] | None = None) -> dict:
    """Back to COCO JSON. With label_names, category ids are remapped to 1..K in that order
    (the model's class ids), and boxes of other labels are dropped."""
    if label_names is not None:
        cat_ids = {n: i + 1 for i, n in enumerate(label_names)}
        categories = [{"id": i, "name": n} for n, i in cat_ids.items()]
        anns = ds.annotations[ds.annotations["label"].isin(cat_ids)].copy()
        anns["category_id"] = anns["label"].map(cat_ids)
    else:
        categories = [
            {"id": int(r.id), "name": r.name, "attribute_of": list(r.attribute_of)}
            for r in ds.categories.itertuples()
        ]
        anns = ds.annotations
    images = [
        {k: (None if _isnull(v) else _plain(v)) for k, v in row.items()}
        for row in ds.images.to_dict("records")
    ]
    annotations = [
        {
            "id": int(r.id), "image_id": int(r.image_id), "category_id": int(r.category_id),
            "bbox": [float(r.x), float(r.y), float(r.w), float(r.h)],
            "area": float(r.w * r.h), "iscrowd": 0,
        }
        for r in anns.itertuples()
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def _isnull(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, streamed (images' `sha256`, registry and export checksums)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
