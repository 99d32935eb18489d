"""Validate never crashes, hangs, blows up or lies (issue 18), one test group per principle:
1 every failure is a finding, 2 bounded work, 3 one decoder truth (also tests/model/test_images.py),
4 ids and arguments taken literally, 5 the cause first. Every dataset here is built to be hostile."""
from __future__ import annotations

import errno
import json
import os
import threading
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from camtune.steps.validate import files as files_mod
from camtune.steps.validate import geometry, validate
from camtune.core.config import ValidateParams
from camtune.steps.validate.files import check_file, check_files
from camtune.steps.validate.findings import MAX_MESSAGE, CheckResult, Finding
from camtune.steps.validate.load import load, max_nesting, read_annotations
from camtune.steps.validate.report import ValidationReport

from .builders import W, H, make_dataset, save, tree_hash, write_image

RULES = ValidateParams(allowed_formats=["JPEG", "PNG"], max_pixels=10_000_000)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _rules(check) -> list[str]:
    return [f.rule for f in check.findings]


def _in_thread(fn, timeout=20):
    """Run fn in a thread; fail (instead of hanging the suite) when it blocks."""
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("v", fn()), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked: validate must never wait on a special file"
    return box["v"]


# --------------------------------------------------------------- 1. every failure is a finding

def test_every_os_error_on_an_image_path_is_its_own_finding(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "images/a.jpg", 1)
    (root / "images/loop1").symlink_to("loop2")
    (root / "images/loop2").symlink_to("loop1")
    (root / "images/dirloop").symlink_to(".")  # a loop through a folder: images/dirloop/dirloop/...
    (root / "images/sub").mkdir()
    os.mkfifo(root / "images/pipe.jpg")
    (root / "images/file").write_bytes(b"x")
    cases = {
        "images/loop1": "FILE_SYMLINK_LOOP",
        "images/" + "x" * 300 + ".jpg": "FILE_NAME_TOO_LONG",
        "images/" + "/".join(["d" * 200] * 30) + ".jpg": "FILE_NAME_TOO_LONG",   # path > PATH_MAX
        "images/sub": "FILE_NOT_REGULAR",
        "images/pipe.jpg": "FILE_NOT_REGULAR",       # a FIFO: opening it would block
        "images/file/a.jpg": "FILE_MISSING",         # a part of the path is a file
        "images/nope.jpg": "FILE_MISSING",
        "images/\udc80.jpg": "FILE_MISSING",          # JSON allows a lone surrogate; no path does
    }
    for name, code in cases.items():
        got = _in_thread(lambda: check_file(root, 7, name, W, H, None, RULES))
        assert _rules(got) == [code], (name, [f.line() for f in got.findings])
        assert got.findings[0].image_id == 7 and len(got.findings[0].line()) < 400
    deep = "images/" + "dirloop/" * 45 + "a.jpg"   # 45 links deep: more than the kernel follows
    assert _rules(check_file(root, 8, deep, W, H, None, RULES)) in (["FILE_SYMLINK_LOOP"], [])


@pytest.mark.parametrize("err,code", [(errno.EACCES, "FILE_UNREADABLE"), (errno.EPERM, "FILE_UNREADABLE"),
                                      (errno.EIO, "FILE_UNREADABLE"), (errno.ELOOP, "FILE_SYMLINK_LOOP"),
                                      (errno.ENAMETOOLONG, "FILE_NAME_TOO_LONG")])
def test_an_error_while_opening_is_a_finding(tmp_path, monkeypatch, err, code):
    # works as root too, where chmod cannot make a file unreadable
    write_image(tmp_path / "a.jpg", 1)
    real_open = os.open

    def failing_open(path, *a, **kw):
        if str(path).endswith("a.jpg"):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(files_mod.os, "open", failing_open)
    assert _rules(check_file(tmp_path, 1, "a.jpg", W, H, None, RULES)) == [code]


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode bits; the errno mapping "
                                    "is covered by test_an_error_while_opening_is_a_finding")
def test_unreadable_image_folder_and_annotations(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, n_images=2)
    os.chmod(root / "images", 0)
    try:
        assert _rules(check_file(root, 1, "images/0001.jpg", W, H, None, RULES)) == ["FILE_UNREADABLE"]
    finally:
        os.chmod(root / "images", 0o755)
    os.chmod(root / "annotations.json", 0)
    try:
        loaded, found = load(root)
        assert loaded is None and [f.rule for f in found] == ["ANNOTATIONS_UNREADABLE"]
        assert "ermission" in found[0].message
    finally:
        os.chmod(root / "annotations.json", 0o644)


def test_annotations_json_that_is_no_regular_file_never_blocks(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    os.mkfifo(root / "annotations.json")   # a FIFO: open() would wait for a writer forever
    loaded, found = _in_thread(lambda: load(root))
    assert loaded is None and [f.rule for f in found] == ["ANNOTATIONS_UNREADABLE"]
    assert "FIFO" in found[0].message
    os.unlink(root / "annotations.json")
    (root / "annotations.json").symlink_to("/dev/zero")  # endless: reading it grew past 5 GiB
    loaded, found = _in_thread(lambda: load(root))
    assert "character device" in found[0].message
    os.unlink(root / "annotations.json")
    (root / "annotations.json").mkdir()
    assert "folder" in load(root)[1][0].message
    os.rmdir(root / "annotations.json")
    (root / "annotations.json").symlink_to("annotations.json")
    assert [f.rule for f in load(root)[1]] == ["ANNOTATIONS_UNREADABLE"]


def test_dataset_path_that_is_a_file_or_missing(tmp_path, params_for):
    (tmp_path / "ds").write_text("I am a file")
    report = validate(params_for(tmp_path / "ds"))
    assert [f.rule for f in report.errors()] == ["DATASET_UNREADABLE"]
    assert "not a dataset folder" in report.errors()[0].message
    assert report.checks["files"].status == "skipped"
    report = validate(params_for(tmp_path / "nothing"))
    assert [f.rule for f in report.errors()] == ["DATASET_UNREADABLE"]


def test_deep_json_is_refused_before_any_parser_recurses(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    for doc in ("[" * 200_000 + "]" * 200_000, '{"images": ' + "[" * 5000 + "]" * 5000 + "}"):
        (root / "annotations.json").write_text(doc)
        loaded, found = load(root)
        assert loaded is None and [f.rule for f in found] == ["ANNOTATIONS_TOO_DEEP"]
    # deep inside an optional field (info) of an otherwise valid dataset
    coco = make_dataset(root, n_images=1)
    coco["info"] = {"x": json.loads("[" * 900 + "]" * 900)}
    save(root, coco)
    assert [f.rule for f in load(root)[1]] == ["ANNOTATIONS_TOO_DEEP"]
    # a little nesting in `info` is fine (it is free-form), and jsonschema walks it without trouble
    coco["info"] = {"x": json.loads("[" * 20 + "]" * 20)}
    save(root, coco)
    loaded, found = load(root)
    assert loaded is not None and found == []


def test_internal_errors_become_one_finding_and_the_other_checks_still_run(dataset, params_for, monkeypatch):
    root, _ = dataset

    def boom(*a, **kw):
        raise KeyError("a bug\nwith a second line")

    monkeypatch.setattr(geometry, "check_containment", boom)
    report = validate(params_for(root))
    [f] = report.errors()
    assert f.rule == "INTERNAL" and f.check == "schema" and "\n" not in f.line()
    assert "check attributes crashed" in f.message and "KeyError" in f.detail  # the traceback
    assert report.checks["tables"].status == "passed" and report.checks["files"].status == "passed"
    assert not report.passed


# ------------------------------------------------------------------------------ 2. bounded work

def _reference_depth(doc) -> int:
    if isinstance(doc, list):
        return 1 + max((_reference_depth(v) for v in doc), default=0)
    if isinstance(doc, dict):
        return 1 + max((_reference_depth(v) for v in doc.values()), default=0)
    return 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_depth_scan_is_exact_on_tricky_strings_and_chunk_borders(monkeypatch, chunk):
    import sys

    monkeypatch.setattr(sys.modules["camtune.steps.validate.load"], "_SCAN_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    pieces = ['"', "\\", "[", "]", "{", "}", "a", '\\"', "\\\\"]
    for _ in range(40):
        def node(d):
            if d > 6 or rng.random() < 0.3:
                return "".join(rng.choice(pieces, size=rng.integers(0, 6)).tolist())
            if rng.random() < 0.5:
                return [node(d + 1) for _ in range(rng.integers(0, 3))]
            return {"".join(rng.choice(pieces, size=3).tolist()): node(d + 1) for _ in range(rng.integers(0, 3))}
        doc = node(0)
        data = json.dumps(doc).encode()
        assert max_nesting(data, limit=1000) == _reference_depth(doc), data


def test_annotations_over_the_size_limit_are_refused_unread(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, n_images=2)
    raw, found = read_annotations(root, max_bytes=100)
    assert raw is None and [f.rule for f in found] == ["ANNOTATIONS_TOO_LARGE"]


def test_more_boxes_than_training_keeps_is_an_error_naming_the_image(tmp_path, params_for):
    from camtune.core.config import ValidateParams

    assert ValidateParams().max_boxes_per_image == 100  # = data.parser.max_num_instances in training
    root = tmp_path / "ds"
    coco = make_dataset(root, n_images=3)
    coco["annotations"] += [{"id": 1000 + i, "image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10]}
                            for i in range(2)]
    save(root, coco)
    report = validate(params_for(root, **{"validate.max_boxes_per_image": 6}))
    [f] = [f for f in report.errors() if f.rule == "TOO_MANY_BOXES"]
    assert f.image_id == 2 and "7 boxes" in f.message and "max_boxes_per_image" in f.message


def _brute_best(c_img, c_box, p_img, p_box):
    best = np.zeros(len(c_box))
    for i in range(len(c_box)):
        same = p_img == c_img[i]
        if same.any():
            best[i] = geometry.contained_fraction(np.repeat(c_box[i:i + 1], same.sum(), 0), p_box[same]).max()
    return best


@pytest.mark.parametrize("seed", range(5))
def test_sorted_containment_agrees_with_all_pairs(seed):
    rng = np.random.default_rng(seed)
    n_p, n_c = 300, 200
    p_img, c_img = rng.integers(0, 4, n_p), rng.integers(0, 4, n_c)
    p_box = np.column_stack([rng.uniform(-5, 90, n_p), rng.uniform(0, 90, n_p),
                             rng.lognormal(2.5, 1.0, n_p), rng.lognormal(2.5, 1.0, n_p)])
    parent = rng.integers(0, n_p, n_c)  # most children sit (partly) inside some parent
    c_box = np.column_stack([p_box[parent, 0] + rng.uniform(-3, 1, n_c) * p_box[parent, 2] * 0.3,
                             p_box[parent, 1] + rng.uniform(-1, 1, n_c),
                             p_box[parent, 2] * rng.uniform(0.1, 1.2, n_c), rng.uniform(1, 20, n_c)])
    c_img = np.where(rng.random(n_c) < 0.8, p_img[parent], c_img)
    brute = _brute_best(c_img, c_box, p_img, p_box)
    for need in (0.9, 0.5, 0.2):
        got = geometry.best_cover(c_img, c_box, p_img, p_box, need, block=97)
        ok_brute, ok_got = brute >= need - 1e-9, got >= need - 1e-9
        assert (ok_brute == ok_got).all()
        assert np.allclose(got[ok_got], brute[ok_got])  # exact where it passes


def test_extreme_box_sizes_do_not_overflow():
    img = np.array([1, 1])
    c = np.array([[0.0, 0.0, 1.0, 1.0], [1e300, 0.0, 1e300, 1e300]])
    p = np.array([[0.0, 0.0, 1e308, 1e308], [-1.0, -1.0, 1e-310, 2.0]])
    with np.errstate(all="ignore"):
        got = geometry.best_cover(img, c, img, p, 0.9)
    assert got.shape == (2,) and got[0] == 1.0


def test_one_image_with_many_parent_and_attribute_boxes_stays_small():
    # 10,000 persons + 10,000 faces in one image: all pairs would be 10^8 (800 MB of floats)
    rng = np.random.default_rng(0)
    n = 10_000
    x, y = rng.uniform(0, 1900, n), rng.uniform(0, 1000, n)
    rows = [{"id": i, "image_id": 1, "label": "person", "x": x[i], "y": y[i], "w": 40.0, "h": 80.0}
            for i in range(n)]
    rows += [{"id": n + i, "image_id": 1, "label": "face", "x": x[i] + 10, "y": y[i] + 5, "w": 16.0, "h": 16.0}
             for i in range(n)]
    rows[-1]["x"] = 5000.0  # one orphan
    anns = pd.DataFrame(rows)
    anns["image_id"] = anns["image_id"].astype("Int64")
    tracemalloc.start()
    found = geometry.check_containment(anns, {"face": ["person"]}, 0.1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [f.annotation_id for f in found] == [2 * n - 1]
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_flow_tasks_take_keys_not_the_dataset():
    # Prefect visits every input collection of a task; the dataset must never be one
    import inspect

    from prefect import Task

    import camtune.steps.validate.flow as flow_mod

    tasks = [v for v in vars(flow_mod).values() if isinstance(v, Task)]
    assert tasks
    allowed = {"str", "int", "config.Params", "list | None"}
    for t in tasks:
        for name, p in inspect.signature(t.fn).parameters.items():
            assert p.annotation in allowed, f"task {t.name} takes {name}: {p.annotation}"


# ------------------------------------------------------------- 4. ids and arguments taken literally

BIG = 2**63 - 1


def test_ids_over_the_whole_schema_range_stay_exact(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root, n_images=3)
    coco["images"][0]["id"] = BIG
    for a in coco["annotations"]:
        if a["image_id"] == 1:
            a["image_id"] = BIG
    coco["annotations"][0]["id"] = 2**53 + 1          # a float64 makes this 2**53
    coco["annotations"][0]["bbox"][0] = None          # -> BOX_NAN naming it
    coco["annotations"][1]["id"] = "x"                # a null id in the same column
    coco["annotations"][2]["image_id"] = BIG - 1      # dangling, one below a real id
    coco["images"][1]["id"] = 2**63                   # beyond the schema: a SCHEMA finding
    save(root, coco)
    loaded, _ = load(root)
    assert str(loaded.images["id"].dtype) == "Int64" and str(loaded.annotations["id"].dtype) == "Int64"
    assert loaded.images["id"].iloc[0] == BIG
    report = validate(params_for(root))
    got = {(f.rule, f.image_id, f.annotation_id) for f in report.findings}
    assert ("BOX_NAN", BIG, 2**53 + 1) in got
    assert ("DANGLING_IMAGE_ID", BIG - 1, coco["annotations"][2]["id"]) in got
    assert any(f.rule == "SCHEMA" and ".images[1].id" in f.message for f in report.findings)
    dumped = json.loads(json.dumps(report.to_dict()))
    assert {f["annotation_id"] for f in dumped["findings"]} >= {2**53 + 1}
    assert f"image_id {BIG - 1} names no image" in {f["message"] for f in dumped["findings"]}


def test_set_takes_a_path_literally(tmp_path):
    from camtune.core import config
    from camtune.core.config import parse_overrides

    weird = "/tmp/a #b: c, [d] 'e' {f}"
    o = parse_overrides([f"data.user_dataset={weird}", "validate.max_pixels=12", "validate.reference_model=null",
                         "validate.allowed_formats=[JPEG]", "user.id=007", "pipeline.task_runner=dask"])
    assert o == {"data.user_dataset": weird, "validate.max_pixels": 12, "validate.reference_model": None,
                 "validate.allowed_formats": ["JPEG"], "user.id": "007", "pipeline.task_runner": "dask"}
    p = config.load(config.ROOT / "params.yaml", o)
    assert p.data.user_dataset == weird and p.user.id == "007"
    assert parse_overrides(["validate.reference_model=m #1.tflite"])["validate.reference_model"] == "m #1.tflite"


def test_two_records_naming_one_file_under_other_spellings(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "images/a.jpg", 1)
    write_image(root / "images/b.jpg", 2)
    (root / "images/link.jpg").symlink_to("a.jpg")
    os.link(root / "images/b.jpg", root / "images/hard.jpg")
    names = ["images/a.jpg", "./images/a.jpg", "images//a.jpg", "images/./a.jpg", "images/link.jpg",
             "images/b.jpg", "images/hard.jpg"]
    images = pd.DataFrame({"id": pd.array(range(1, 8), dtype="Int64"), "file_name": names,
                           "width": W, "height": H, "sha256": None})
    findings, _ = check_files(root, images, RULES)
    same = sorted(f.image_id for f in findings if f.rule == "FILE_SAME_AS")
    assert same == [2, 3, 4, 5, 7]
    assert not [f for f in findings if f.rule == "DUP_CONTENT"]  # the same file, not a copy


# ----------------------------------------------------------------------------- 5. the cause first

def test_stderr_puts_the_cause_before_its_consequences(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root, n_images=12)
    next(c for c in coco["categories"] if c["name"] == "person")["name"] = "Person"
    save(root, coco)
    report = validate(params_for(root))
    lines = report.summary_lines()
    assert lines[0].startswith("ERROR UNKNOWN_LABEL"), lines
    rules = [line.split()[1] for line in lines[:-1]]
    assert rules.index("UNKNOWN_LABEL") < rules.index("ORPHAN_ATTRIBUTE")
    assert "UNKNOWN_LABEL" in lines[-1] and "ORPHAN_ATTRIBUTE" in lines[-1]  # counts of the rest


def test_schema_message_of_a_huge_wrong_type_is_short(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    for doc in (list(range(200_000)), {"images": {str(i): i for i in range(100_000)}, "annotations": [],
                                       "categories": [{"id": 1, "name": "person"}]}):
        (root / "annotations.json").write_text(json.dumps(doc))
        _, found = load(root)
        assert found and all(len(f.message) <= MAX_MESSAGE for f in found), [f.message[:80] for f in found]
        assert found[0].rule == "SCHEMA"


def test_control_characters_are_escaped_and_messages_bounded():
    name = "images/a\nERROR FAKE [image 9]: all good\x1b[2J\r.jpg"
    f = Finding("error", "FILE_MISSING", f"{name}: no such file " + "x" * 5000, image_id=1, file=name)
    line = f.line()
    assert "\n" not in line and "\x1b" not in line and "\r" not in line and "\\n" in line
    assert len(f.message) <= MAX_MESSAGE and f.detail.startswith("images/a\\nERROR")
    md = ValidationReport("d", "u", {"files": CheckResult("files", [f])}).to_markdown()
    assert "\x1b" not in md and "all good\\x1b" in md


def test_nothing_in_the_dataset_is_modified_by_hostile_files(tmp_path, params_for):
    root = tmp_path / "ds"
    coco = make_dataset(root, n_images=12)
    os.mkfifo(root / "images/fifo.jpg")
    (root / "images/loop").symlink_to("loop")
    coco["images"][0]["file_name"] = "images/fifo.jpg"
    coco["images"][1]["file_name"] = "images/loop"
    coco["images"][2]["file_name"] = "images/" + "n" * 400
    save(root, coco)
    before = tree_hash(root)
    report = _in_thread(lambda: validate(params_for(root)), timeout=120)
    assert {f.rule for f in report.errors()} >= {"FILE_NOT_REGULAR", "FILE_SYMLINK_LOOP", "FILE_NAME_TOO_LONG"}
    assert tree_hash(root) == before
