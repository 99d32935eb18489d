"""The dataset's raw COCO dict as every ingest writer handles it: read, copy, save atomically (with
the check that no verified image or box is lost), new ids, label ids."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from camtune.core import atomic
from camtune.core.dataset import ANNOTATIONS_FILE, DatasetError, read_json, schema_errors
from camtune.core.errors import StepFailed

__all__ = ["load_coco", "empty_coco", "save_coco", "next_id", "check_verified_kept", "dvc_hint",
           "label_ids", "copy_coco", "IngestError"]


class IngestError(StepFailed):
    """An import or export refused its input; nothing was written."""


def empty_coco(label_names: list[str], attribute_parents: dict[str, list[str]]) -> dict:
    return {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": n, "attribute_of": list(attribute_parents.get(n, []))}
                           for i, n in enumerate(label_names)]}


def load_coco(root: str | Path, label_names: list[str], attribute_parents: dict[str, list[str]],
              *, create: bool = False) -> dict:
    """The dataset's annotations.json as a dict (schema-checked), or a new empty one."""
    path = Path(root) / ANNOTATIONS_FILE
    if not path.exists():
        if not create:
            raise DatasetError(f"{path}: file not found")
        return empty_coco(label_names, attribute_parents)
    coco = read_json(path)
    errs = schema_errors(coco)
    if errs:
        listing = "\n  ".join(f"{p}: {m}" for p, m in errs[:20])
        raise DatasetError(f"{path}: does not match the dataset schema:\n  {listing}")
    return coco


def label_ids(coco: dict, label_names: list[str]) -> dict[str, int]:
    """Our label name -> the dataset's category id; a label of ours missing from the dataset is
    refused (it could not be written)."""
    by_name = {c["name"]: c["id"] for c in coco["categories"]}
    missing = [n for n in label_names if n not in by_name]
    if missing:
        raise IngestError(f"the dataset has no category for {', '.join(missing)}; add them to its "
                          f"categories (labels.names lists them)")
    return by_name


def next_id(records: list[dict]) -> int:
    return max((int(r["id"]) for r in records), default=0) + 1


def _verified_snapshot(coco: dict) -> dict[int, tuple[str, list[str]]]:
    """image id -> (image record, its annotations), as canonical JSON, for verified images."""
    verified = {img["id"]: img for img in coco["images"] if img.get("verified")}
    anns: dict[int, list[str]] = {i: [] for i in verified}
    for a in coco["annotations"]:
        if a["image_id"] in anns:
            anns[a["image_id"]].append(json.dumps(a, sort_keys=True))
    return {i: (json.dumps(img, sort_keys=True), sorted(anns[i])) for i, img in verified.items()}


def check_verified_kept(before: dict, after: dict) -> None:
    """Refuse (before anything is written) a change that drops or alters a verified image."""
    old, new = _verified_snapshot(before), _verified_snapshot(after)
    changed = sorted(i for i in old if new.get(i) != old[i])
    if changed:
        raise IngestError(f"refusing to write: verified image(s) {changed[:10]} would be changed or lost "
                          "(a bug: please report it); the dataset was left as it was")


def save_coco(root: str | Path, before: dict, after: dict) -> bool:
    """Replace annotations.json atomically; False (nothing written) when nothing changed."""
    path = Path(root) / ANNOTATIONS_FILE
    check_verified_kept(before, after)
    if path.exists() and after == before:
        return False
    errs = schema_errors(after)
    if errs:  # our own output must match the format; never write one that does not
        raise IngestError(f"refusing to write {path}: result does not match the dataset schema: {errs[:5]}")
    atomic.write_json(path, after)
    return True


def copy_coco(coco: dict) -> dict:
    return copy.deepcopy(coco)


def dvc_hint(root: str | Path) -> str:
    """How to keep the previous version and record the new one with DVC."""
    root = Path(root)
    return (f"dataset {root} replaced. The previous version stays recoverable through DVC: "
            f"`git checkout HEAD -- {root}.dvc && dvc checkout {root}` (or `dvc checkout` of the stage that "
            f"owns it). Record this one: `dvc add {root} && git add {root}.dvc && "
            f"git commit -m 'dataset: ingest' && dvc push`.")
