"""A hostile-input corpus for the importers and exporters (issue 28): each case builds its input
in a fresh folder, runs the real importer/exporter and checks the answer (a named refusal with
nothing changed, a finding for that item only, or the right result). `CASES` maps a case name
to a function `(folder) -> None` that raises AssertionError when the answer is wrong.

Run by tests/hardening/test_corpus.py and by benchmarks/hostile_io.py (answers, time, memory).
Imports `tests.support.frigate` and `tests.steps.ingest.builders` (the repository root on sys.path)."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

from camtune.core import config
from camtune.core.dataset import DatasetError
from camtune.core.errors import StepFailed

from tests.hardening.hostile_images import png_bytes, png_claiming, truncated_png

CASES: dict[str, callable] = {}
ROOT = config.ROOT


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _params(folder: Path, **extra):
    return config.load(ROOT / "params.yaml", {"data.user_dataset": str(folder / "user"),
                                             "ingest.out_dir": str(folder / "ingest"), **extra})


def _tree(path: Path) -> str:
    """A hash of every file's name and bytes under `path` (nothing changed = same hash)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            h.update(str(p.relative_to(path)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _refused(fn, exc_types, *needles):
    try:
        fn()
    except exc_types as exc:
        msg = str(exc)
        for n in needles:
            assert n in msg, f"refused, but the message does not say {n!r}: {msg[:300]}"
        return msg
    raise AssertionError("accepted; expected a refusal")


def _two_cameras(folder: Path):
    """A user dataset: verified image 7, and unverified porch (20) and garage (10) both named 0001.jpg."""
    from tests.steps.ingest.builders import add_model_suggestion, write_verified_dataset

    params = _params(folder)
    root = folder / "user"
    coco = write_verified_dataset(root, params)
    for iid, cam in ((10, "garage"), (20, "porch")):
        add_model_suggestion(root, coco, params, iid, cam, png_bytes(64, 48, (iid, 90, 120)))
    (root / "annotations.json").write_text(json.dumps(coco))
    return params, root, coco


def _cvat_doc(params, coco, ids=(20,)):
    from camtune.steps.ingest import cvat, tool_files
    images = [i for i in coco["images"] if i["id"] in ids]
    return cvat.cvat_coco(coco, images, tool_files.unique_export_names(images))


def _cvat_import(params, root, doc_or_path):
    from camtune.steps.ingest import load_coco, review, save_coco

    coco = load_coco(root, list(params.labels.names), dict(params.labels.attribute_parents))
    doc = review.read_export(doc_or_path, max_bytes=params.validate.max_annotations_bytes) \
        if isinstance(doc_or_path, Path) else doc_or_path
    new, _ = review.apply_reviews(coco, review.coco_reviews(doc, coco, list(params.labels.names), "x", "cvat"))
    save_coco(root, coco, new)
    return new


# ------------------------------------------------------------------ CVAT / COCO import

@case
def cvat_same_file_name_two_cameras(folder):
    params, root, coco = _two_cameras(folder)
    doc = _cvat_doc(params, coco)
    doc["annotations"][0]["bbox"] = [30.0, 20.0, 12.0, 12.0]
    new = _cvat_import(params, root, doc)
    imgs = {i["id"]: i for i in new["images"]}
    assert imgs[20]["verified"] and not imgs[10]["verified"], "the reviewed box went to the wrong image"
    assert [a["bbox"] for a in new["annotations"] if a["image_id"] == 20] == [[30.0, 20.0, 12.0, 12.0]]
    assert [a["bbox"] for a in new["annotations"] if a["image_id"] == 10] == [[4.0, 4.0, 10.0, 10.0]]


def _cvat_refused(folder, mutate, *needles):
    params, root, coco = _two_cameras(folder)
    doc = _cvat_doc(params, coco, (10, 20))
    mutate(doc)
    before = _tree(root)
    _refused(lambda: _cvat_import(params, root, json.loads(json.dumps(doc))), (StepFailed,), *needles)
    assert _tree(root) == before, "the dataset changed"


@case
def cvat_plain_repeated_file_name(folder):
    _cvat_refused(folder, lambda d: d["images"][0].update(file_name="0001.jpg"), "'0001.jpg'", "cannot be placed")


@case
def cvat_id_of_another_image(folder):
    _cvat_refused(folder, lambda d: d["images"][0].update(file_name="ct7_0001.jpg"), "ct7_0001.jpg")


@case
def cvat_same_image_twice(folder):
    def twice(d):
        d["images"][1]["file_name"] = d["images"][0]["file_name"]
    _cvat_refused(folder, twice, "already")


@case
def cvat_duplicate_export_ids(folder):
    _cvat_refused(folder, lambda d: d["images"][1].update(id=d["images"][0]["id"]), "used twice")


@case
def cvat_nan_bbox(folder):
    _cvat_refused(folder, lambda d: d["annotations"][0].update(bbox=[float("nan"), 1, 2, 3]), "finite")


@case
def cvat_infinite_bbox(folder):
    _cvat_refused(folder, lambda d: d["annotations"][0].update(bbox=[1, 1, float("inf"), 3]), "finite")


@case
def cvat_string_bbox(folder):
    _cvat_refused(folder, lambda d: d["annotations"][0].update(bbox=["1", 1, 2, 3]), "not a number")


@case
def cvat_nan_rotation(folder):
    _cvat_refused(folder, lambda d: d["annotations"][0].update(attributes={"rotation": float("nan")}), "rotation")


@case
def cvat_non_object_entries(folder):
    _cvat_refused(folder, lambda d: d["images"].append("not an object"), "not an object")


@case
def cvat_zip_bomb(folder):
    params, root, coco = _two_cameras(folder)
    params = _params(folder, **{"validate.max_annotations_bytes": 2**20})
    z = folder / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", b'{"images": [], "x": "' + b"0" * (16 * 2**20) + b'"}')
    assert z.stat().st_size < 2**20
    before = _tree(root)
    _refused(lambda: _cvat_import(params, root, z), (StepFailed,), "unzips to")
    assert _tree(root) == before


@case
def cvat_broken_zip(folder):
    params, root, coco = _two_cameras(folder)
    z = folder / "broken.zip"
    buf = folder / "ok.zip"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(_cvat_doc(params, coco)) * 50)
    data = bytearray(buf.read_bytes())
    data[60:400] = b"\x00" * 340          # the deflate stream is damaged, the directory intact
    z.write_bytes(bytes(data))
    _refused(lambda: _cvat_import(params, root, z), (StepFailed,), "broken.zip")


@case
def cvat_zip_lying_about_its_size(folder):
    """The zip's directory declares a small member; the stream inflates to more: read is capped."""
    params, root, coco = _two_cameras(folder)
    params = _params(folder, **{"validate.max_annotations_bytes": 2**20})
    z = folder / "liar.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", b" " * (4 * 2**20))
    data = bytearray(z.read_bytes())
    # patch the declared uncompressed size (local header at 22, central directory entry at +24)
    small = (1000).to_bytes(4, "little")
    data[22:26] = small
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = small
    z.write_bytes(bytes(data))
    before = _tree(root)
    _refused(lambda: _cvat_import(params, root, z), (StepFailed,), "liar.zip")
    assert _tree(root) == before


@case
def export_not_json(folder):
    params, root, coco = _two_cameras(folder)
    p = folder / "export.json"
    p.write_bytes(b"\xff\xfe not json")
    _refused(lambda: _cvat_import(params, root, p), (StepFailed,), "not valid JSON")


# ------------------------------------------------------------------ Label Studio import

def _ls_export(params, coco, folder, edit):
    from camtune.steps.ingest import label_studio
    images = [i for i in coco["images"] if i["id"] in (10, 20)]
    tasks = label_studio.ls_tasks(folder / "user", coco, images, None, model_version="m",
                           url_prefix="/data/local-files/?d=", document_root=str(folder))
    out = []
    for i, t in enumerate(tasks, 1):
        result = copy.deepcopy(t.get("predictions", [{}])[0].get("result", []))
        task = {"id": i, "data": t["data"], "annotations": [{"id": 1000 + i, "result": result,
                                                              "was_cancelled": False,
                                                              "updated_at": "2026-10-03T09:00:00Z"}]}
        edit(i, task)
        out.append(task)
    return json.loads(json.dumps(out))


def _ls_refused(folder, edit, *needles):
    from camtune.steps.ingest import label_studio
    params, root, coco = _two_cameras(folder)
    export = _ls_export(params, coco, folder, edit)
    _refused(lambda: label_studio.ls_reviews(export, coco, list(params.labels.names), "export.json"), (StepFailed,),
             *needles)


@case
def ls_nan_coordinate(folder):
    _ls_refused(folder, lambda i, t: t["annotations"][0]["result"][0]["value"].update(x=float("nan")),
                "value.x", "finite")


@case
def ls_infinite_size(folder):
    _ls_refused(folder, lambda i, t: t["annotations"][0]["result"][0]["value"].update(width=float("inf")),
                "value.width")


@case
def ls_nan_rotation(folder):
    _ls_refused(folder, lambda i, t: t["annotations"][0]["result"][0]["value"].update(rotation=float("nan")),
                "rotation")


@case
def ls_task_id_names_another_image(folder):
    def swap(i, t):
        if i == 1:
            t["data"]["camtune_image_id"] = 7
    _ls_refused(folder, swap, "camtune_image_id 7")


@case
def ls_no_id_repeated_file_name(folder):
    _ls_refused(folder, lambda i, t: t["data"].pop("camtune_image_id"), "shared by images [10, 20]")


@case
def ls_two_tasks_one_image(folder):
    def same(i, t):
        t["data"]["camtune_image_id"] = 20
        t["data"]["image"] = "/data/local-files/?d=user/images/porch/0001.jpg"
    _ls_refused(folder, same, "also task")


@case
def ls_json_same_name_lands_right(folder):
    from camtune.steps.ingest import label_studio, review
    params, root, coco = _two_cameras(folder)

    def move(i, t):
        if t["data"]["camtune_image_id"] == 20:
            t["annotations"][0]["result"][0]["value"]["x"] = 50.0
        else:
            t["annotations"] = []
    export = _ls_export(params, coco, folder, move)
    reviews, _ = label_studio.ls_reviews(export, coco, list(params.labels.names), "e.json")
    new, _ = review.apply_reviews(coco, reviews)
    got = {a["image_id"]: a["bbox"] for a in new["annotations"] if a["image_id"] in (10, 20)}
    assert got[20][0] == 32.0 and got[10] == [4.0, 4.0, 10.0, 10.0]
    assert {i["id"] for i in new["images"] if i["verified"]} == {7, 20}


@case
def ls_coco_repeated_file_name(folder):
    from camtune.steps.ingest import review
    params, root, coco = _two_cameras(folder)
    doc = {"images": [{"id": 0, "file_name": "images/0001.jpg", "width": 64, "height": 48}],
           "annotations": [], "categories": [{"id": 0, "name": "car"}]}
    _refused(lambda: review.coco_reviews(doc, coco, list(params.labels.names), "r.json", "label_studio"),
             (StepFailed,), "shared by images")


# ------------------------------------------------------------------ exports

def _export(folder, out, which, file_name=None, link=False):
    from camtune.steps.ingest import cvat, label_studio, load_coco, tool_files

    params, root, coco = _two_cameras(folder)
    if file_name is not None:
        secret = folder / "elsewhere" / "secret.jpg"
        secret.parent.mkdir(exist_ok=True)
        secret.write_bytes(png_bytes(64, 48))
        if link:
            os.symlink(secret, root / "images" / "porch" / "link.jpg")
        coco["images"][-1]["file_name"] = file_name.replace("SECRET", str(secret))
        (root / "annotations.json").write_text(json.dumps(coco))
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(root, names, parents)
    images = tool_files.selection(coco, None)
    if which == "cvat":
        return lambda: cvat.write_cvat_export(root, coco, images, out, names, parents)
    return lambda: label_studio.write_ls_export(root, coco, images, None, out, model_version="m", url_prefix="/d?d=",
                                         document_root=str(folder), label_names=names, attribute_parents=parents)


@case
def export_out_is_a_user_folder(folder):
    for which in ("cvat", "ls"):
        out = folder / f"Documents-{which}"
        (out / "thesis").mkdir(parents=True)
        (out / "thesis.tex").write_text("years of work")
        before = _tree(out)
        _refused(_export(folder / which, out, which), (StepFailed,), "has no .camtune-output.json")
        assert _tree(out) == before


@case
def export_out_is_a_file(folder):
    out = folder / "notes.txt"
    out.write_text("mine")
    _refused(_export(folder / "x", out, "cvat"), (StepFailed,), "not a folder camtune wrote")
    assert out.read_text() == "mine"


@case
def export_again_replaces_its_own(folder):
    out = folder / "exp"
    _export(folder / "a", out, "cvat")()
    _export(folder / "b", out, "cvat")()
    assert (out / ".camtune-output.json").is_file()


@case
def export_file_outside_by_dotdot(folder):
    out = folder / "exp"
    _refused(_export(folder, out, "cvat", "../elsewhere/secret.jpg"), (StepFailed,), "contains '..'")
    assert not out.exists()


@case
def export_file_outside_absolute(folder):
    _refused(_export(folder, folder / "exp", "ls", "SECRET"), (StepFailed,), "absolute path")


@case
def export_file_outside_by_symlink(folder):
    _refused(_export(folder, folder / "exp", "cvat", "images/porch/link.jpg", link=True), (StepFailed,),
             "resolves outside")


# ------------------------------------------------------------------ public dataset import

def _public(folder, **extra):
    from tests.steps.ingest_public.test_ingest_public import make_source, params

    src, imgs = make_source(folder / "src")
    return params(folder, src, imgs, **extra)


@case
def public_into_a_foreign_folder(folder):
    from camtune.steps.ingest_public import public_coco

    p = _public(folder)
    pool = folder / "data" / "public" / "tiny"
    (pool / "images").mkdir(parents=True)
    (pool / "images" / "holiday.jpg").write_bytes(b"mine")
    before = _tree(pool)
    _refused(lambda: public_coco.ingest(p.ingest_public, p.labels, progress=False), (DatasetError,),
             "has no .camtune-output.json")
    assert _tree(pool) == before


@case
def public_shrinks_keeping_foreign_files(folder):
    from camtune.steps.ingest_public import public_coco

    p = _public(folder, **{"ingest_public.max_images": 3})
    public_coco.ingest(p.ingest_public, p.labels, progress=False)
    pool = folder / "data" / "public" / "tiny"
    (pool / "images" / "holiday.jpg").write_bytes(b"mine")
    fewer = _public(folder / "again", **{"ingest_public.max_images": 2,
                                         "ingest_public.out": str(folder / "data" / "public")})
    s = public_coco.ingest(fewer.ingest_public, fewer.labels, progress=False)
    assert s["images_removed"] == 1 and (pool / "images" / "holiday.jpg").read_bytes() == b"mine"


# ------------------------------------------------------------------ Frigate

def _frigate(folder, events, **client_kw):
    from tests.support.frigate import FrigateServer

    from camtune.steps.ingest import frigate as fr
    from camtune.model.images import Limits

    params = _params(folder)
    fp = params.ingest.frigate
    opts = fr.ImportOptions(user_id=params.user.id, label_names=tuple(params.labels.names),
                            attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
                            progress=False, limits=Limits.of(params.validate),
                            refused_path=str(folder / "ingest" / "frigate_refused.json"))
    with FrigateServer() as srv:
        for ev, data, fmt in events:
            srv.add(ev, data, fmt)
        client = fr.FrigateClient(srv.url, retries=0, **client_kw)
        return fr.import_frigate(client, folder / "user", opts)


def _ev(i, **kw):
    from tests.support.frigate import make_event
    return make_event(i, **kw)


def _webp():
    from tests.support.frigate import snapshot_bytes
    return snapshot_bytes(64, 36, "WEBP")


@case
def frigate_truncated_snapshot(folder):
    c = _frigate(folder, [(_ev(1), _webp(), "webp"), (_ev(2), truncated_png(), "png"), (_ev(3), _webp(), "webp")])
    assert c["imported"] == 2 and [r["event"] for r in c["refused"]] == [_ev(2)["id"]]


@case
def frigate_header_bomb_snapshot(folder):
    c = _frigate(folder, [(_ev(1), png_claiming(13000, 13000), "png"), (_ev(2), _webp(), "webp")])
    assert c["imported"] == 1 and "exceeds validate.max_pixels" in c["refused"][0]["reason"]


@case
def frigate_huge_snapshot_body(folder):
    c = _frigate(folder, [(_ev(1), b"\x89PNG" + b"\0" * 300_000, "png"), (_ev(2), _webp(), "webp")],
                 max_body_bytes=100_000)
    assert c["imported"] == 1 and "max_response_bytes" in c["refused"][0]["reason"]


@case
def frigate_not_an_image(folder):
    c = _frigate(folder, [(_ev(1), b"<html>error</html>", "webp"), (_ev(2), _webp(), "webp")])
    assert c["imported"] == 1 and len(c["refused"]) == 1


@case
def frigate_refused_event_not_asked_again(folder):
    c1 = _frigate(folder, [(_ev(1), truncated_png(), "png")])
    c2 = _frigate(folder, [(_ev(1), truncated_png(), "png")])
    assert len(c1["refused"]) == 1 and c2["refused_before"] == 1 and c2["refused"] == []


@case
def frigate_camera_name_with_newline(folder):
    c = _frigate(folder, [(_ev(1, camera="front\n"), _webp(), "webp")])
    assert c["imported"] == 0 and c["bad_events"] and not (folder / "user" / "images" / "frigate" / "front\n").exists()


@case
def frigate_camera_name_traversal(folder):
    c = _frigate(folder, [(_ev(1, camera="../../etc"), _webp(), "webp")])
    assert c["imported"] == 0 and c["bad_events"]


@case
def frigate_credentials_in_url(folder):
    from camtune.steps.ingest import frigate as fr

    msg = _refused(lambda: fr.FrigateClient("http://admin:hunter22@frigate:5000"), (StepFailed,), "credentials")
    assert "hunter22" not in msg


# ------------------------------------------------------------------ the report

@case
def report_huge_box(folder):
    import threading

    from PIL import Image

    from camtune.steps.report import draw

    out = {}
    boxes = [draw.Box("car", (1.0, 1.0, 1e300, 1e300), "gt"), draw.Box("car", (float("nan"), 0, 1, 1), "miss")]
    t = threading.Thread(target=lambda: out.setdefault("img", draw.draw_boxes(Image.new("RGB", (300, 200)), boxes,
                                                                                ["car"], 1.0)), daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(20)
    assert "img" in out, f"drawing did not finish in {time.monotonic() - t0:.0f} s"
