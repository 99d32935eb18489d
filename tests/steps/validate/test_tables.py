"""The GX table suite directly on pandas tables: each rule passes on good rows, fails on bad ones,
and the tolerance params move the line."""
from __future__ import annotations

import math

import pytest

from camtune.core.config import ValidateParams
from camtune.core.dataset import tables
from camtune.steps.validate.tables import annotation_frame, check_tables, results_json

from .builders import LABELS, categories, cat_id

RULES = ValidateParams(box_tolerance_px=1.0, min_box_size_px=2.0)


def coco(boxes, *, images=None, cats=None):
    images = images or [{"id": 1, "file_name": "images/1.jpg", "width": 100, "height": 50, "user_id": "u1"},
                        {"id": 2, "file_name": "images/2.jpg", "width": 100, "height": 50, "user_id": "u1"}]
    anns = [{"id": i + 1, "image_id": img, "category_id": cid, "bbox": list(b)}
            for i, (img, cid, b) in enumerate(boxes)]
    return {"images": images, "annotations": anns, "categories": cats or categories()}


def run(c, rules=RULES):
    findings, gx = check_tables(*tables(c), rules, LABELS, "u1")
    return findings, results_json(gx)


def codes(findings):
    return sorted({f.rule for f in findings})


PERSON = cat_id("person")


def test_good_tables_pass_every_expectation():
    findings, gx = run(coco([(1, PERSON, [0, 0, 100, 50]), (2, cat_id("car"), [10, 10, 20, 20])]))
    assert findings == []
    assert set(gx) == {"images", "annotations", "categories"}
    assert all(r["success"] for r in gx.values())
    # the GX results are real GX output, with our finding codes in the expectation meta
    metas = [r["expectation_config"]["meta"]["code"] for r in gx["annotations"]["results"]]
    assert {"BOX_OUTSIDE", "UNKNOWN_LABEL", "DANGLING_IMAGE_ID"} <= set(metas)


@pytest.mark.parametrize("box,code", [
    ([math.nan, 0, 10, 10], "BOX_NAN"),
    ([0, 0, math.inf, 10], "BOX_NAN"),
    ([0, 0, 0, 10], "BOX_NONPOSITIVE"),
    ([0, 0, 10, -3], "BOX_NONPOSITIVE"),
    ([-1.5, 0, 10, 10], "BOX_OUTSIDE"),
    ([95, 0, 7, 10], "BOX_OUTSIDE"),
    ([0, 45, 10, 7], "BOX_OUTSIDE"),
    ([5, 5, 1.5, 10], "BOX_TOO_SMALL"),
])
def test_box_rules_fail_bad_boxes(box, code):
    findings, _ = run(coco([(1, PERSON, [10, 10, 10, 10]), (1, PERSON, box)]))
    assert codes(findings) == [code]
    assert [(f.image_id, f.annotation_id) for f in findings] == [(1, 2)]


@pytest.mark.parametrize("box", [[-1, 0, 10, 10], [91, 0, 10, 10], [0, 0, 2, 2], [0, 0, 100, 50]])
def test_box_rules_pass_within_tolerance(box):
    findings, _ = run(coco([(1, PERSON, box)]))
    assert findings == []


def test_tolerance_params_move_the_line():
    c = coco([(1, PERSON, [-4, 0, 10, 10]), (1, PERSON, [20, 20, 3, 3])])
    assert codes(run(c)[0]) == ["BOX_OUTSIDE"]
    assert codes(run(c, ValidateParams(box_tolerance_px=5))[0]) == []
    assert codes(run(c, ValidateParams(min_box_size_px=4))[0]) == ["BOX_OUTSIDE", "BOX_TOO_SMALL"]


def test_referential_integrity_and_labels():
    cats = categories() + [{"id": 50, "name": "bicycle"}]
    findings, _ = run(coco([(1, PERSON, [0, 0, 5, 5]), (9, PERSON, [0, 0, 5, 5]), (1, 77, [0, 0, 5, 5]),
                            (2, 50, [0, 0, 5, 5])], cats=cats))
    got = {(f.rule, f.annotation_id) for f in findings}
    assert got == {("DANGLING_IMAGE_ID", 2), ("DANGLING_CATEGORY_ID", 3), ("UNKNOWN_LABEL", 4)}


def test_duplicate_ids_and_files_and_foreign_user():
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50, "user_id": "u1"},
              {"id": 1, "file_name": "b.jpg", "width": 100, "height": 50, "user_id": "u1"},
              {"id": 3, "file_name": "b.jpg", "width": 100, "height": 50, "user_id": "u2"}]
    c = coco([(1, PERSON, [0, 0, 5, 5]), (1, PERSON, [0, 0, 5, 5])], images=images,
             cats=categories() + [{"id": 1, "name": "person"}])
    c["annotations"][1]["id"] = 1
    findings, _ = run(c)
    by = {}
    for f in findings:
        by.setdefault(f.rule, []).append(f)
    assert set(by) == {"DUP_IMAGE_ID", "DUP_FILE_NAME", "DUP_ANNOTATION_ID", "DUP_CATEGORY_ID", "FOREIGN_USER"}
    assert [f.file for f in by["DUP_FILE_NAME"]] == ["b.jpg", "b.jpg"]
    assert [f.severity for f in by["FOREIGN_USER"]] == ["warning"]
    assert by["FOREIGN_USER"][0].image_id == 3


def test_annotation_frame_is_vectorised_over_the_image_sizes():
    images, anns, cats = tables(coco([(1, PERSON, [90, 0, 20, 10]), (2, PERSON, [0, 0, 10, 60])]))
    frame = annotation_frame(anns, images, cats)
    assert frame["overhang"].tolist() == [10.0, 10.0]
    assert frame["image_found"].tolist() == [True, True]
