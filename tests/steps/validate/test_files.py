"""File rules, one file at a time: safe path first, header before decode, then size/format/hash."""
from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

from camtune.core.dataset import file_sha256
from camtune.core.config import ValidateParams
from camtune.steps.validate.files import check_file, check_files, resolve_inside

from .builders import tree_hash, write_image

RULES = ValidateParams(allowed_formats=["JPEG", "PNG"], max_pixels=10_000)


@pytest.mark.parametrize("name,code", [
    ("/etc/passwd", "FILE_ABSOLUTE"),
    ("C:\\images\\a.jpg", "FILE_ABSOLUTE"),
    ("../x.jpg", "FILE_TRAVERSAL"),
    ("images/../../x.jpg", "FILE_TRAVERSAL"),
    ("images\\..\\..\\x.jpg", "FILE_TRAVERSAL"),
    ("images/a.jpg", None),
    ("a b/c.jpg", None),
])
def test_resolve_inside(tmp_path, name, code):
    _, got, _ = resolve_inside(tmp_path, name)
    assert got == code


def test_symlink_inside_the_folder_is_fine_outside_is_not(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "images/a.jpg", 1)
    (root / "images/alias.jpg").symlink_to("a.jpg")
    write_image(tmp_path / "secret.jpg", 2)
    (root / "images/out.jpg").symlink_to(tmp_path / "secret.jpg")
    assert resolve_inside(root, "images/alias.jpg")[1] is None
    assert resolve_inside(root, "images/out.jpg")[1] == "FILE_SYMLINK_OUT"


def test_good_file_passes_and_reports_its_hash(tmp_path):
    write_image(tmp_path / "a.jpg", 1, size=(40, 30))
    c = check_file(tmp_path, 1, "a.jpg", 40, 30, file_sha256(tmp_path / "a.jpg"), RULES)
    assert c.findings == () and c.decoded and c.sha256 == file_sha256(tmp_path / "a.jpg")


@pytest.mark.parametrize("declared,code", [((41, 30), "SIZE_MISMATCH"), ((40, None), "SIZE_MISMATCH")])
def test_size_mismatch(tmp_path, declared, code):
    write_image(tmp_path / "a.jpg", 1, size=(40, 30))
    c = check_file(tmp_path, 1, "a.jpg", *declared, None, RULES)
    assert [f.rule for f in c.findings] == [code]
    assert "40x30" in c.findings[0].message
    assert c.findings[0].data == {"width": 40, "height": 30, "declared_width": declared[0],
                                  "declared_height": declared[1]}


def test_pixel_bomb_is_refused_from_the_header_without_decoding(tmp_path, monkeypatch):
    Image.new("L", (200, 100)).save(tmp_path / "big.png")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    c = check_file(tmp_path, 1, "big.png", 200, 100, None, RULES)
    assert [f.rule for f in c.findings] == ["PIXEL_BOMB"] and not c.decoded
    assert decoded == []
    ok = check_file(tmp_path, 1, "big.png", 200, 100, None, ValidateParams(max_pixels=20_000))
    assert ok.findings == () and decoded  # under the limit it is decoded


def test_format_and_undecodable_and_sha(tmp_path):
    Image.new("RGB", (10, 10)).save(tmp_path / "a.gif", "GIF")
    assert [f.rule for f in check_file(tmp_path, 1, "a.gif", 10, 10, None, RULES).findings] == \
        ["FORMAT_NOT_ALLOWED"]
    (tmp_path / "t.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert [f.rule for f in check_file(tmp_path, 2, "t.jpg", 10, 10, None, RULES).findings] == \
        ["FILE_UNDECODABLE"]
    write_image(tmp_path / "b.jpg", 3, size=(10, 10))
    assert [f.rule for f in check_file(tmp_path, 3, "b.jpg", 10, 10, "f" * 64, RULES).findings] == \
        ["SHA256_MISMATCH"]
    assert [f.rule for f in check_file(tmp_path, 4, "dir", 10, 10, None, RULES).findings] == ["FILE_MISSING"]


def test_check_files_finds_duplicate_content_and_never_writes(tmp_path):
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        write_image(tmp_path / name, 1 if name != "c.jpg" else 2, size=(10, 10))
    images = pd.DataFrame({"id": [1, 2, 3], "file_name": ["a.jpg", "b.jpg", "c.jpg"], "width": [10] * 3,
                           "height": [10] * 3, "sha256": [None] * 3})
    before = tree_hash(tmp_path)
    findings, checks = check_files(tmp_path, images, RULES, workers=2)
    assert [(f.rule, f.image_id, f.severity) for f in findings] == [("DUP_CONTENT", 2, "warning")]
    assert all(c.decoded for c in checks)
    assert tree_hash(tmp_path) == before
