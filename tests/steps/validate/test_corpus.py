"""A corpus of malformed datasets: each must give its own finding code through `validate()`, and
the dataset folder must be byte-identical afterwards."""
from __future__ import annotations

import math
import struct
import zlib

import pytest
from PIL import Image

from camtune.core.dataset import file_sha256
from camtune.steps.validate import validate

from .builders import make_dataset, save, tree_hash, write_image


def _ann(coco, ann_id):
    return next(a for a in coco["annotations"] if a["id"] == ann_id)


def _img(coco, image_id):
    return next(i for i in coco["images"] if i["id"] == image_id)


def truncated_jpeg(root, coco):
    p = root / "images/0001.jpg"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return {}


def non_image_file(root, coco):
    (root / "images/0002.jpg").write_text("this is a text file, not a JPEG\n")
    return {}


def png_bomb(root, coco):
    # a real PNG whose pixels compress to almost nothing: 1.2 megapixels in about a kilobyte
    Image.new("L", (1200, 1000)).save(root / "images/bomb.png")
    coco["images"][0].update(file_name="images/bomb.png", width=1200, height=1000)
    return {"validate.max_pixels": 1_000_000}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(root, coco):
    # a header claiming 100000 x 100000 pixels; decoding it would need 10 GB
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) \
        + _png_chunk(b"IEND", b"")
    (root / "images/huge.png").write_bytes(data)
    coco["images"][0].update(file_name="images/huge.png", width=100_000, height=100_000)
    return {}


def path_traversal(root, coco):
    write_image(root.parent / "outside.jpg", 99)
    coco["images"][0]["file_name"] = "images/../../outside.jpg"
    return {}


def absolute_path(root, coco):
    write_image(root.parent / "outside.jpg", 99)
    coco["images"][0]["file_name"] = str((root.parent / "outside.jpg").resolve())
    return {}


def symlink_out(root, coco):
    write_image(root.parent / "outside.jpg", 99)
    (root / "images/link.jpg").symlink_to(root.parent / "outside.jpg")
    coco["images"][0]["file_name"] = "images/link.jpg"
    return {}


def symlinked_folder_out(root, coco):
    write_image(root.parent / "elsewhere" / "x.jpg", 98)
    (root / "images/sub").symlink_to(root.parent / "elsewhere", target_is_directory=True)
    coco["images"][0]["file_name"] = "images/sub/x.jpg"
    return {}


def missing_file(root, coco):
    coco["images"][0]["file_name"] = "images/nope.jpg"
    return {}


def format_not_allowed(root, coco):
    write_image(root / "images/0001.bmp", 1, fmt="BMP")
    coco["images"][0]["file_name"] = "images/0001.bmp"
    return {}


def nan_box(root, coco):
    _ann(coco, 11)["bbox"][0] = math.nan  # json writes NaN, Python's json reads it back
    return {}


def null_box_coordinate(root, coco):
    _ann(coco, 21)["bbox"][3] = None
    return {}


def negative_box(root, coco):
    _ann(coco, 11)["bbox"][2] = -5
    return {}


def outside_box(root, coco):
    _ann(coco, 13)["bbox"] = [50, 30, 30, 10]  # x + w = 80 > 64
    return {}


def tiny_box(root, coco):
    _ann(coco, 11)["bbox"] = [2, 2, 1, 1]
    return {}


def unknown_label(root, coco):
    coco["categories"].append({"id": 99, "name": "bicycle", "attribute_of": []})
    coco["annotations"].append({"id": 9001, "image_id": 1, "category_id": 99, "bbox": [1, 1, 10, 10]})
    return {}


def duplicate_image_id(root, coco):
    _img(coco, 2)["id"] = 1
    return {}


def duplicate_annotation_id(root, coco):
    _ann(coco, 12)["id"] = 11
    return {}


def duplicate_category_id(root, coco):
    coco["categories"].append({"id": 1, "name": "person", "attribute_of": []})
    return {}


def duplicate_file_name(root, coco):
    _img(coco, 2)["file_name"] = _img(coco, 1)["file_name"]
    return {}


def dangling_image_id(root, coco):
    _ann(coco, 11)["image_id"] = 777
    return {}


def dangling_category_id(root, coco):
    _ann(coco, 11)["category_id"] = 555
    return {}


def wrong_declared_size(root, coco):
    _img(coco, 3)["width"] = 640
    return {}


def orphan_face(root, coco):
    coco["annotations"] = [a for a in coco["annotations"] if a["id"] != 11]  # image 1's person
    return {}


def logo_outside_any_car(root, coco):
    _ann(coco, 25)["bbox"] = [2, 30, 8, 8]  # the ups logo of image 2, away from its car
    return {}


def nine_new_verified(root, coco):
    for img in coco["images"][9:]:
        img["verified"] = False
    return {}


def wrong_sha256(root, coco):
    _img(coco, 4)["sha256"] = "0" * 64
    return {}


def duplicate_content(root, coco):
    (root / "images/0005.jpg").write_bytes((root / "images/0004.jpg").read_bytes())
    return {}


def schema_wrong_type(root, coco):
    _img(coco, 1)["width"] = "sixty-four"
    coco["annotations"].append(["not", "an", "object"])
    _ann(coco, 31)["bbox"] = ["a", "b", 1, 2]
    return {}


def foreign_user(root, coco):
    _img(coco, 6)["user_id"] = "someone_else"
    return {}


CORPUS = {
    truncated_jpeg: "FILE_UNDECODABLE",
    non_image_file: "FILE_UNDECODABLE",
    png_bomb: "PIXEL_BOMB",
    png_header_bomb: "PIXEL_BOMB",
    path_traversal: "FILE_TRAVERSAL",
    absolute_path: "FILE_ABSOLUTE",
    symlink_out: "FILE_SYMLINK_OUT",
    symlinked_folder_out: "FILE_SYMLINK_OUT",
    missing_file: "FILE_MISSING",
    format_not_allowed: "FORMAT_NOT_ALLOWED",
    nan_box: "BOX_NAN",
    null_box_coordinate: "BOX_NAN",
    negative_box: "BOX_NONPOSITIVE",
    outside_box: "BOX_OUTSIDE",
    tiny_box: "BOX_TOO_SMALL",
    unknown_label: "UNKNOWN_LABEL",
    duplicate_image_id: "DUP_IMAGE_ID",
    duplicate_annotation_id: "DUP_ANNOTATION_ID",
    duplicate_category_id: "DUP_CATEGORY_ID",
    duplicate_file_name: "DUP_FILE_NAME",
    dangling_image_id: "DANGLING_IMAGE_ID",
    dangling_category_id: "DANGLING_CATEGORY_ID",
    wrong_declared_size: "SIZE_MISMATCH",
    orphan_face: "ORPHAN_ATTRIBUTE",
    logo_outside_any_car: "ORPHAN_ATTRIBUTE",
    nine_new_verified: "TOO_FEW_NEW",
    wrong_sha256: "SHA256_MISMATCH",
    duplicate_content: "DUP_CONTENT",
    schema_wrong_type: "SCHEMA",
    foreign_user: "FOREIGN_USER",
}
WARNINGS = {"DUP_CONTENT", "FOREIGN_USER"}


@pytest.mark.parametrize("breakage", list(CORPUS), ids=lambda f: f.__name__)
def test_malformed_dataset_gives_its_finding(tmp_path, params_for, breakage):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    overrides = breakage(root, coco)
    save(root, coco)
    before = tree_hash(root)

    report = validate(params_for(root, **overrides))

    assert tree_hash(root) == before, "validation modified the dataset folder"
    code = CORPUS[breakage]
    hits = [f for f in report.findings if f.rule == code]
    assert hits, f"expected {code}, got {[f.line() for f in report.findings]}"
    if code in WARNINGS:
        assert all(f.severity == "warning" for f in hits)
    else:
        assert not report.passed and all(f.severity == "error" for f in hits)
    # every finding about one record names it
    if code not in ("TOO_FEW_NEW", "DUP_CATEGORY_ID", "SCHEMA"):
        assert all(f.image_id is not None or f.annotation_id is not None for f in hits)


def test_clean_dataset_passes_with_no_findings(dataset, params_for):
    root, _ = dataset
    before = tree_hash(root)
    report = validate(params_for(root))
    assert report.passed, [f.line() for f in report.findings]
    assert report.findings == []
    assert report.checks["audit"].status == "skipped"
    assert tree_hash(root) == before


def test_unreadable_annotations_is_a_finding_not_a_crash(tmp_path, params_for):
    root = tmp_path / "ds"
    make_dataset(root, n_images=2)
    (root / "annotations.json").write_text("{not json")
    report = validate(params_for(root))
    assert [f.rule for f in report.findings] == ["ANNOTATIONS_UNREADABLE"]
    assert not report.passed
    assert report.checks["files"].status == "skipped"


def test_findings_name_the_exact_records(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    _ann(coco, 13)["bbox"] = [50, 30, 30, 10]
    save(root, coco)
    report = validate(params_for(root))
    [f] = [f for f in report.findings if f.rule == "BOX_OUTSIDE"]
    assert (f.image_id, f.annotation_id) == (1, 13)
    assert "64x48" in f.message and "16 px" in f.message


def test_schema_findings_name_the_record_and_the_rest_still_runs(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    schema_wrong_type(root, coco)
    _ann(coco, 13)["bbox"] = [50, 30, 30, 10]
    save(root, coco)
    report = validate(params_for(root))
    schema = [f for f in report.findings if f.rule == "SCHEMA"]
    assert any(f.image_id == 1 and ".images[0].width" in f.message for f in schema)
    assert any(f.annotation_id == 31 and ".annotations[10].bbox[0]" in f.message for f in schema)
    assert any(".annotations[60]" in f.message for f in schema)  # the non-object record
    # the broken width blanks image 1's size; other images' boxes are still checked
    assert [f.annotation_id for f in report.findings if f.rule == "BOX_OUTSIDE"] == []
    coco["images"][0]["width"] = 64
    save(root, coco)
    report = validate(params_for(root))
    assert [f.annotation_id for f in report.findings if f.rule == "BOX_OUTSIDE"] == [13]


def test_sha256_given_and_right_passes(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    for img in coco["images"]:
        img["sha256"] = file_sha256(root / img["file_name"])
    save(root, coco)
    report = validate(params_for(root))
    assert report.passed and not report.findings
