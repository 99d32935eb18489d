"""The table-shaped rules as a Great Expectations 1.x suite on the pandas tables.

Cross-table facts (does the annotation's image exist, how far does a box stick out of *its*
image) are first computed as plain vectorised columns; GX then checks those columns, so every
rule is a GX expectation with a finding code in its `meta`, the GX results are kept as the
machine-readable evidence, and unexpected rows map back to image and annotation ids through
the frames' RangeIndex (GX lists unexpected rows by index).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from camtune.core.config import ValidateParams
from camtune.steps.validate.findings import Finding
from camtune.steps.validate.load import image_lookup


def _ids(col) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, null mask) of an id column: exact, never through float64."""
    arr = pd.array(col, dtype="Int64")
    return arr.to_numpy(dtype="int64", na_value=0), np.asarray(arr.isna())


def image_frame(images: pd.DataFrame, anns: pd.DataFrame | None = None) -> pd.DataFrame:
    df = images[["id", "file_name", "user_id", "width", "height"]].reset_index(drop=True)
    # boxes per image record: training keeps max_boxes_per_image of them and drops the rest
    counts = pd.Series(0, index=pd.Index([], dtype="Int64")) if anns is None else \
        anns["image_id"].dropna().value_counts()
    df["box_count"] = df["id"].map(counts).fillna(0).astype("int64")
    return df


def annotation_frame(anns: pd.DataFrame, images: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """The annotations plus the derived columns the suite checks (all vectorised).

    Cheap dtypes on purpose: GX filters and copies its batch once per expectation, so labels are
    categorical and the flags nullable booleans (null = nothing to check; GX skips nulls)."""
    image_id, image_null = _ids(anns["image_id"])
    category_id, category_null = _ids(anns["category_id"])
    df = pd.DataFrame({
        "id": pd.array(anns["id"], dtype="Int64"),
        "image_id": pd.array(anns["image_id"], dtype="Int64"),
        "category_id": pd.array(anns["category_id"], dtype="Int64"),
        "label": pd.Categorical(anns["label"]),
    })
    box = anns[["x", "y", "w", "h"]].to_numpy(dtype="float64", copy=True)
    finite = np.isfinite(box).all(axis=1)
    box[~finite] = np.nan
    x, y, w, h = box.T
    df["x"], df["y"], df["w"], df["h"] = x, y, w, h
    df["box_finite"] = finite

    # one hash lookup per annotation: the position of its image (first record of a repeated id)
    lookup = image_lookup(images)
    pos = pd.Index(lookup.index.to_numpy(dtype="int64")).get_indexer(image_id)
    pos[image_null] = -1
    found = pos >= 0
    df["image_found"] = pd.arrays.BooleanArray(found, image_null)
    cat_vals, cat_null = _ids(categories["id"])
    cat_ids = pd.Index(np.unique(cat_vals[~cat_null]))
    df["category_found"] = pd.arrays.BooleanArray(cat_ids.get_indexer(category_id) >= 0, category_null)

    sizes = np.append(lookup[["width", "height"]].to_numpy(dtype="float64"), [[np.nan, np.nan]], axis=0)
    img_w, img_h = sizes[pos].T  # pos -1 picks the NaN row: unknown image, unknown size
    df["img_w"], df["img_h"] = img_w, img_h
    # How far the box sticks out of its image, worst side; fmax ignores the right/bottom sides
    # when the image size is unknown (a dangling or schema-broken image is reported elsewhere).
    with np.errstate(invalid="ignore"):
        overhang = np.fmax(np.fmax(-x, -y), np.fmax(x + w - img_w, y + h - img_h))
        min_side = np.minimum(w, h)
    df["overhang"] = overhang  # NaN for non-finite boxes (x is NaN there)
    df["min_side"] = min_side
    # only boxes with a positive size are "too small"; non-positive ones are BOX_NONPOSITIVE
    df["positive_side"] = np.where(min_side > 0, min_side, np.nan)
    return df


def category_frame(categories: pd.DataFrame) -> pd.DataFrame:
    df = categories[["id", "name"]].reset_index(drop=True)
    df["id"] = pd.array(df["id"], dtype="Int64")
    return df


# --- the suites: (expectation, code, severity, message(row)) -------------------------------------

def _fmt_box(r) -> str:
    return "[" + ", ".join(f"{v:g}" for v in (r.x, r.y, r.w, r.h)) + "]"


def _suites(v: ValidateParams, labels: Sequence[str], user_id: str | None, gxe) -> dict[str, list[tuple]]:
    tol, min_size = v.box_tolerance_px, v.min_box_size_px
    images = [
        (gxe.ExpectColumnValuesToBeUnique(column="id"), "DUP_IMAGE_ID", "error",
         lambda r: f"image id {r.id} is used by more than one image"),
        (gxe.ExpectColumnValuesToBeUnique(column="file_name"), "DUP_FILE_NAME", "error",
         lambda r: f"file {r.file_name!r} is named by more than one image record"),
    ]
    images.append((gxe.ExpectColumnValuesToBeBetween(column="box_count", max_value=v.max_boxes_per_image),
                   "TOO_MANY_BOXES", "error",
                   lambda r: f"image has {r.box_count} boxes; training keeps at most {v.max_boxes_per_image} "
                             "(validate.max_boxes_per_image) and would drop the rest; split the image's "
                             "objects over fewer, or raise the limit with training's max_num_instances"))
    if user_id is not None:
        images.append((gxe.ExpectColumnValuesToBeInSet(column="user_id", value_set=[user_id]),
                       "FOREIGN_USER", "warning",
                       lambda r: f"image belongs to user {r.user_id!r}, not {user_id!r}; "
                                 "it does not count as this user's data"))
    annotations = [
        (gxe.ExpectColumnValuesToBeUnique(column="id"), "DUP_ANNOTATION_ID", "error",
         lambda r: f"annotation id {r.id} is used by more than one annotation"),
        (gxe.ExpectColumnValuesToBeInSet(column="image_found", value_set=[True]), "DANGLING_IMAGE_ID",
         "error", lambda r: f"image_id {r.image_id} names no image"),
        (gxe.ExpectColumnValuesToBeInSet(column="category_found", value_set=[True]),
         "DANGLING_CATEGORY_ID", "error", lambda r: f"category_id {r.category_id} names no category"),
        (gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(labels)), "UNKNOWN_LABEL",
         "error", lambda r: f"label {r.label!r} is not one of labels.names"),
        (gxe.ExpectColumnValuesToBeInSet(column="box_finite", value_set=[True]), "BOX_NAN", "error",
         lambda r: "bbox has a missing or non-finite coordinate"),
        (gxe.ExpectColumnValuesToBeBetween(column="min_side", min_value=0, strict_min=True),
         "BOX_NONPOSITIVE", "error", lambda r: f"bbox {_fmt_box(r)} has width or height <= 0"),
        (gxe.ExpectColumnValuesToBeBetween(column="overhang", max_value=tol), "BOX_OUTSIDE", "error",
         lambda r: f"bbox {_fmt_box(r)} sticks out of the "
                   f"{'?' if np.isnan(r.img_w) else f'{r.img_w:g}'}x"
                   f"{'?' if np.isnan(r.img_h) else f'{r.img_h:g}'} image by {r.overhang:g} px "
                   f"(tolerance {tol:g} px)"),
        (gxe.ExpectColumnValuesToBeBetween(column="positive_side", min_value=min_size), "BOX_TOO_SMALL",
         "error", lambda r: f"bbox {_fmt_box(r)} is smaller than {min_size:g} px"),
    ]
    categories = [
        (gxe.ExpectColumnValuesToBeUnique(column="id"), "DUP_CATEGORY_ID", "error",
         lambda r: f"category id {r.id} is used by more than one category"),
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig)

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,   # never phone home from a validation run
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_suite(frames: dict[str, pd.DataFrame], v: ValidateParams, labels: Sequence[str],
              user_id: str | None = None) -> tuple[list[Finding], dict]:
    """Validate each frame with its GX suite. Returns (findings, {table: GX suite result}); turn the
    results into JSON with `results_json`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx  # lazily: importing GX costs seconds
    import great_expectations.expectations as gxe
    from great_expectations.validator.v1_validator import Validator

    ctx = _context()
    source = ctx.data_sources.add_pandas("camtune")
    findings: list[Finding] = []
    results: dict[str, object] = {}
    for name, entries in _suites(v, labels, user_id, gxe).items():
        frame = frames[name]
        suite = gx.ExpectationSuite(name=f"camtune_{name}")
        messages: dict[str, tuple[str, Callable]] = {}
        for expectation, code, severity, message in entries:
            expectation.meta = {"code": code, "severity": severity}
            suite.add_expectation(expectation)
            messages[code] = (severity, message)
        # GX copies its batch while filtering rows: hand it only the columns the suite reads.
        # The frame keeps its RangeIndex, so GX's unexpected_index_list is the row position.
        columns = list(dict.fromkeys(e.column for e, *_ in entries))
        batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        # GX's own Validator, as ValidationDefinition.run uses it, minus the results store: the
        # result is ours to keep, and storing would deep-copy every unexpected row once more
        validator = Validator(batch_definition=batch_definition,
                              batch_parameters={"dataframe": frame[columns]},
                              result_format={"result_format": "COMPLETE",
                                             "return_unexpected_index_query": False})
        result = validator.validate_expectation_suite(suite)
        results[name] = result
        for r in result.results:
            code = r.expectation_config.meta["code"]
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"GX expectation {code} failed to run: "
                                   f"{r.exception_info.get('exception_message')}")
            if r.success:
                continue
            severity, message = messages[code]
            rows = [int(i) for i in r.result.get("unexpected_index_list") or []]
            findings.extend(_to_findings(name, frame.iloc[sorted(rows)], code, severity, message))
    return findings, results


def results_json(results: dict) -> dict:
    """{table: GX result} -> plain JSON (the GX results file of the report)."""
    return {name: r.to_json_dict() for name, r in results.items()}


def _to_findings(table: str, bad: pd.DataFrame, code, severity, message) -> list[Finding]:
    out = []
    for r in bad.itertuples(index=False):
        if table == "images":
            out.append(Finding(severity, code, message(r), image_id=r.id, file=r.file_name))
        elif table == "annotations":
            out.append(Finding(severity, code, message(r), image_id=r.image_id, annotation_id=r.id))
        else:
            out.append(Finding(severity, code, message(r)))
    return out


def check_tables(images: pd.DataFrame, anns: pd.DataFrame, categories: pd.DataFrame,
                 v: ValidateParams, labels: Sequence[str], user_id: str | None = None
                 ) -> tuple[list[Finding], dict]:
    """The suite on the three tables: `v` (params' `validate` section) sets the tolerances,
    `labels` the known labels, `user_id` (when given) whose images these must be."""
    frames = {
        "images": image_frame(images, anns),
        "annotations": annotation_frame(anns, images, categories),
        "categories": category_frame(categories),
    }
    return run_suite(frames, v, labels, user_id)
