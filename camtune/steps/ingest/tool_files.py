"""What the Label Studio and CVAT round trips share: which images go out for review (`selection`),
the names their files carry in a tool (`ct<image id>_<base name>`: the id is what an import keys on,
base names repeat across cameras and folders) and how a tool's file name is placed back on exactly
one image, the checked image file, and an export folder that only camtune replaces.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path, PurePosixPath

from camtune.core import atomic
from camtune.core.dataset import UnsafePath, safe_image_path
from camtune.steps.ingest.coco import IngestError

COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
          "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075"]


def selection(coco: dict, ranking: list[dict] | None, max_images: int | None = None) -> list[dict]:
    """Unverified images, in review priority order (ranking.json), else by id."""
    unverified = {img["id"]: img for img in coco["images"] if not img.get("verified")}
    order = [e["image_id"] for e in (ranking or []) if e["image_id"] in unverified]
    order += sorted(set(unverified) - set(order))
    chosen = [unverified[i] for i in order]
    return chosen[:max_images] if max_images else chosen


def category_names(coco: dict) -> dict[int, str]:
    return {c["id"]: c["name"] for c in coco["categories"]}


def anns_by_image(coco: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        out.setdefault(a["image_id"], []).append(a)
    return out


def basename(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).name


def export_name(img: dict) -> str:
    """The flat file name an image has in a tool: `ct<image id>_<base name>`. The id is the
    identity the import keys on; a base name alone can repeat (two cameras each with 0001.jpg)."""
    base = basename(img["file_name"])
    base = base if base.count(".") else f"{base}.png"
    return f"ct{int(img['id'])}_{base}"


def unique_export_names(images: list[dict]) -> dict[int, str]:
    return {img["id"]: export_name(img) for img in images}


_EXPORT_NAME = re.compile(r"ct([0-9]{1,18})_(.+)")


def image_from_export_name(name: str, images: dict[int, dict]) -> int | None:
    """Our image id from a tool's file name written by `export_name`, or None when the name is not
    one of ours or names an image whose base name differs (a file from another dataset)."""
    m = _EXPORT_NAME.fullmatch(basename(name))
    if m is None:
        return None
    iid = int(m.group(1))
    img = images.get(iid)
    return iid if img is not None and export_name(img) == m.group(0) else None


def unique_base_names(images: list[dict]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Base name -> image id for the base names only one image has; the repeated ones apart."""
    seen: dict[str, list[int]] = {}
    for img in images:
        seen.setdefault(basename(img["file_name"]), []).append(img["id"])
    return ({n: ids[0] for n, ids in seen.items() if len(ids) == 1},
            {n: ids for n, ids in seen.items() if len(ids) > 1})


# Label Studio names an uploaded file `<8 hex digits>-<its name>`
LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def place_by_name(name: str | None, unique: dict[str, int], repeated: dict[str, list[int]],
                   images: dict[int, dict], tool: str) -> tuple[int | None, str]:
    """An item the tool names only by file: ours by the id in the name, else by a base name that
    exactly one image of the dataset has. (None, why) when it cannot be placed for sure."""
    if not name:
        return None, "no file name"
    candidates = [name] + ([LS_UPLOAD_PREFIX.sub("", name, count=1)] if tool == "label_studio" else [])
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


def checked_file(root: Path, img: dict) -> Path:
    """The image's file through the checked resolver: never a file outside the dataset folder
    (absolute, `..`, a symlink leading out) in an upload folder or a Label Studio URL."""
    try:
        path = safe_image_path(root, img.get("file_name"))
    except UnsafePath as exc:
        raise IngestError(f"image {img.get('id')}: {exc}; run validate, nothing was exported") from None
    if not path.is_file():
        raise IngestError(f"image {img.get('id')}: {path} is not a file; run validate, nothing was exported")
    return path


@contextlib.contextmanager
def owned_output(out_dir: Path, writer: str, legacy: frozenset[str]):
    """The export's folder, replaced only when camtune wrote it (a user's --out is never wiped)."""
    try:
        # "images" may sit beside the files an older CVAT export always wrote, never alone
        with atomic.output_dir(out_dir, owner=writer, legacy_names=legacy | {"images"},
                               legacy_required=legacy) as tmp:
            yield tmp
    except atomic.NotOurs as exc:
        raise IngestError(str(exc)) from None
