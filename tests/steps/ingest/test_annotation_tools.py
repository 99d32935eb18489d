"""Label Studio and CVAT round trips: our export, what the tool writes back (shapes as Label Studio's
JSON export and its COCO converter, and CVAT's COCO 1.0, write them), our import."""
from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from camtune.steps.ingest import IngestError, load_coco, save_coco
from camtune.steps.ingest import cvat, label_studio, review, tool_files

from .builders import add_model_suggestion, read, write_verified_dataset


@pytest.fixture
def dataset(tmp_path, params):
    """One verified image plus four unverified 1280x720 frames with Frigate and model boxes."""
    root = tmp_path / "user"
    write_verified_dataset(root, params)
    coco = read(root)
    (root / "images" / "frigate" / "front").mkdir(parents=True)
    for k in range(4):
        name = f"images/frigate/front/17900000{k}.5-ev{k}.png"
        Image.new("RGB", (1280, 720), (k * 40, 90, 120)).save(root / name)
        iid = 100 + k
        coco["images"].append({"id": iid, "file_name": name, "width": 1280, "height": 720,
                               "user_id": params.user.id, "camera": "front",
                               "captured_at": "2026-10-02T10:00:00Z", "verified": False, "verified_at": None,
                               "source": {"frigate_event": f"17900000{k}.5-ev{k}", "model_hash": "h",
                                          "detector_type": "cpu"}})
        coco["annotations"].append({"id": 200 + 2 * k, "image_id": iid, "category_id": 3,
                                    "bbox": [128.0, 144.0, 384.0, 288.0], "area": 384.0 * 288.0, "iscrowd": 0,
                                    "origin": "frigate", "score": 0.81})
        coco["annotations"].append({"id": 201 + 2 * k, "image_id": iid, "category_id": 4,
                                    "bbox": [200.5, 300.25, 60.0, 20.0], "area": 1200.0, "iscrowd": 0,
                                    "origin": "model", "score": 0.55})
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def names_of(coco):
    return {c["id"]: c["name"] for c in coco["categories"]}


def image_and_boxes(coco, iid):
    return ([i for i in coco["images"] if i["id"] == iid],
            sorted((a["id"], json.dumps(a, sort_keys=True)) for a in coco["annotations"] if a["image_id"] == iid))


def boxes_of(coco, iid):
    n = names_of(coco)
    return sorted((n[a["category_id"]], [round(v, 6) for v in a["bbox"]]) for a in coco["annotations"]
                  if a["image_id"] == iid)


# ------------------------------------------------------------------ Label Studio

def ls_export_from_tasks(tasks: list[dict], edit) -> list[dict]:
    """What Label Studio's JSON export holds after an annotator worked through `tasks`: ids given
    by LS, each annotation starts from the prediction (result ids kept, origin "prediction"),
    `edit(i, task, result) -> (result, was_cancelled) | None` (None: the task was not opened)."""
    out = []
    for i, t in enumerate(tasks, 1):
        preds = t.get("predictions") or []
        start = copy.deepcopy(preds[0]["result"]) if preds else []
        for r in start:
            r["origin"] = "prediction"
        task = {"id": i, "data": t["data"], "annotations": [], "predictions": [
            {"id": i, "model_version": p["model_version"], "score": p["score"], "result": p["result"],
             "task": i, "created_at": "2026-10-03T08:00:00.000000Z"} for p in preds],
            "meta": {}, "created_at": "2026-10-03T08:00:00.000000Z", "inner_id": i, "project": 1,
            "total_annotations": 0, "cancelled_annotations": 0, "total_predictions": len(preds)}
        res = edit(i, task, start)
        if res is not None:
            result, cancelled = res
            task["annotations"].append({
                "id": 1000 + i, "completed_by": 1, "result": result, "was_cancelled": cancelled,
                "ground_truth": False, "created_at": "2026-10-03T09:00:00.000000Z",
                "updated_at": f"2026-10-03T09:0{i}:00.000000Z", "lead_time": 12.5, "result_count": len(result),
                "task": i, "project": 1, "parent_prediction": i if preds else None})
            task["total_annotations"] = 1
        out.append(task)
    return out


def ls_coco_from_export(export: list[dict], label_names: list[str]) -> dict:
    """Label Studio's COCO export (label_studio_sdk converter's convert_to_coco, re-stated):
    one image per non-cancelled annotation, file_name under images/, categories sorted by name
    from 0 unless the labeling config gives them a `category`, pixel bboxes from percent."""
    cats = [{"id": i, "name": n} for i, n in enumerate(sorted(label_names))]
    cid = {c["name"]: c["id"] for c in cats}
    images, anns = [], []
    for task in export:
        for a in sorted([a for a in task["annotations"] if not a.get("was_cancelled")],
                        key=lambda a: a["created_at"], reverse=True):
            url = task["data"]["image"]
            image_id = len(images)
            images.append({"width": 1280, "height": 720, "id": image_id,
                           "file_name": "images/" + url.rsplit("/", 1)[-1]})
            for r in a["result"]:
                v = r["value"]
                x, y = v["x"] * r["original_width"] / 100, v["y"] * r["original_height"] / 100
                w, h = v["width"] * r["original_width"] / 100, v["height"] * r["original_height"] / 100
                name = v["rectanglelabels"][0]
                if name not in cid:  # a name outside the config gets the next id, as the converter does
                    cid[name] = len(cats)
                    cats.append({"id": cid[name], "name": name})
                anns.append({"id": len(anns), "image_id": image_id, "category_id": cid[name],
                             "segmentation": [], "bbox": [x, y, w, h], "ignore": 0, "iscrowd": 0, "area": w * h})
    return {"images": images, "categories": cats, "annotations": anns,
            "info": {"year": 2026, "version": "1.0", "description": "", "contributor": "Label Studio", "url": "",
                     "date_created": "2026-10-03 09:30:00"}}


def annotator(i, task, result):
    """Task 1: accepted as is. 2: a box deleted, one moved, one added as 'Person' (case).
    3: skipped (cancelled). 4: never opened."""
    if i == 1:
        return result, False
    if i == 2:
        kept = [r for r in result if r["value"]["rectanglelabels"] != ["license_plate"]]
        moved = copy.deepcopy(kept[0])
        moved["value"]["x"] += 1.0
        moved["origin"] = "prediction-changed"
        new = {"id": "Xy12AbCd34", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
               "original_width": 1280, "original_height": 720, "image_rotation": 0, "origin": "manual",
               "value": {"x": 50.0, "y": 50.0, "width": 10.0, "height": 20.0, "rotation": 0,
                         "rectanglelabels": ["Person"]}}
        return [moved, new], False
    if i == 3:
        return [], True
    return None


def test_label_studio_round_trip(tmp_path, params, dataset):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(dataset, names, parents)
    before = copy.deepcopy(coco)
    images = tool_files.selection(coco, [{"image_id": 103, "priority": 2.0, "rank": 1}])
    assert [i["id"] for i in images] == [103, 100, 101, 102]      # priority first, verified left out
    out = tmp_path / "ls"
    tasks = label_studio.write_ls_export(dataset, coco, images, None, out, model_version="frigate+m1",
                                  url_prefix="/data/local-files/?d=", document_root=str(tmp_path),
                                  label_names=names, attribute_parents=parents)
    written = json.loads((out / "tasks.json").read_text())
    assert written == tasks and len(tasks) == 4
    t = tasks[1]
    assert t["data"]["image"] == "/data/local-files/?d=user/images/frigate/front/179000000.5-ev0.png"
    pred = t["predictions"][0]
    assert pred["model_version"] == "frigate+m1" and pred["score"] == 0.55
    car = next(r for r in pred["result"] if r["value"]["rectanglelabels"] == ["car"])
    assert car["type"] == "rectanglelabels" and (car["from_name"], car["to_name"]) == ("label", "image")
    assert car["value"]["x"] == pytest.approx(10.0) and car["value"]["y"] == pytest.approx(20.0)
    assert car["value"]["width"] == pytest.approx(30.0) and car["value"]["height"] == pytest.approx(40.0)
    assert (car["original_width"], car["original_height"], car["score"]) == (1280, 720, 0.81)
    xml = (out / "labeling_config.xml").read_text()
    import xml.etree.ElementTree as ET
    root = ET.fromstring(xml)
    labels = root.find("RectangleLabels")
    assert labels.get("toName") == "image" and root.find("Image").get("value") == "$image"
    assert [lab.get("value") for lab in labels] == names
    assert "inside its person" in labels[names.index("face")].get("hint")

    export = ls_export_from_tasks(tasks, annotator)
    path = tmp_path / "project-1-at-2026-10-03.json"
    path.write_text(json.dumps(export))
    reviews, not_done = label_studio.ls_reviews(json.loads(path.read_text()), coco, names, path)
    assert not_done == [3, 4]
    new, counts = review.apply_reviews(coco, reviews)
    assert counts["verified"] == 2 and counts["deleted_boxes"] == 1 and counts["unchanged_boxes"] == 2
    assert save_coco(dataset, before, new)
    after = read(dataset)
    imgs = {i["id"]: i for i in after["images"]}
    # task 1 (image 103): accepted unchanged, boxes keep id, origin and score
    assert imgs[103]["verified"] and imgs[103]["verified_at"] == "2026-10-03T09:01:00Z"
    assert sorted((a["id"], a["origin"], a["score"]) for a in after["annotations"] if a["image_id"] == 103) == \
        [(206, "frigate", 0.81), (207, "model", 0.55)]
    # task 2 (image 100): plate deleted, car moved (same id, human), a person added
    assert imgs[100]["verified"]
    got = {names_of(after)[a["category_id"]]: a for a in after["annotations"] if a["image_id"] == 100}
    assert set(got) == {"car", "person"}
    assert got["car"]["id"] == 200 and got["car"]["origin"] == "human" and "score" not in got["car"]
    assert got["car"]["bbox"][0] == pytest.approx(128.0 + 12.8)
    assert got["person"]["bbox"] == pytest.approx([640.0, 360.0, 128.0, 144.0])
    # skipped and unopened tasks: still unverified, boxes untouched
    for iid in (101, 102):
        assert not imgs[iid]["verified"] and boxes_of(after, iid) == boxes_of(before, iid)
    assert image_and_boxes(after, 7) == image_and_boxes(before, 7)
    # an export that names the already-verified image 7 with other boxes: image 7 is kept as it was
    export_7 = export + [{"id": 99, "data": {"image": "/data/local-files/?d=user/images/keep.png",
                                             "camtune_image_id": 7},
                          "annotations": [{"id": 5, "result": [], "was_cancelled": False,
                                           "created_at": "2026-10-04T00:00:00Z"}], "predictions": []}]
    v7, _ = label_studio.ls_reviews(export_7, after, names, path)
    new7, c7 = review.apply_reviews(after, v7)
    assert new7 == after and c7["kept_verified"] == 3
    # the same export again: nothing changes, nothing is written
    stamp = (dataset / "annotations.json").stat().st_mtime_ns
    v2, _ = label_studio.ls_reviews(export, after, names, path)
    new2, c2 = review.apply_reviews(after, v2)
    assert new2 == after and c2["kept_verified"] == 2 and c2["verified"] == 0
    assert not save_coco(dataset, after, new2)
    assert (dataset / "annotations.json").stat().st_mtime_ns == stamp

    # Label Studio's COCO export of the same project gives the same dataset
    coco_export = ls_coco_from_export(export, names)
    fresh = before
    v3 = review.coco_reviews(coco_export, fresh, names, "result.json", "label_studio")
    new3, c3 = review.apply_reviews(fresh, v3)
    for iid in (100, 101, 102, 103):
        assert boxes_of(new3, iid) == boxes_of(after, iid)
    assert c3["verified"] == 2


def test_label_studio_unknown_label_and_image_refused(tmp_path, params, dataset):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(dataset, names, parents)
    tasks = label_studio.ls_tasks(dataset, coco, tool_files.selection(coco, None), None, model_version="m",
                           url_prefix="/data/local-files/?d=", document_root=str(tmp_path))

    def bad(i, task, result):
        if i == 2:
            result[0]["value"]["rectanglelabels"] = ["Truck"]
        return result, False
    export = ls_export_from_tasks(tasks, bad)
    with pytest.raises(IngestError, match=r"task 2 annotation 1002 region c\d+: label 'Truck'"):
        label_studio.ls_reviews(export, coco, names, "export.json")
    export = ls_export_from_tasks(tasks, lambda i, t, r: (r, False))
    export[0]["data"] = {"image": "/data/upload/1/deadbeef-other.jpg"}
    with pytest.raises(IngestError, match="name no image of this dataset"):
        label_studio.ls_reviews(export, coco, names, "export.json")


# ------------------------------------------------------------------ CVAT

def cvat_after_annotation(doc: dict) -> dict:
    """CVAT's COCO 1.0 export after a job: ids renumbered, scores dropped, frames of the task with
    their names; image 2's model box deleted, a dog added (as 'DOG'), image 3 left with no boxes."""
    out = copy.deepcopy(doc)
    cats = {c["name"]: c["id"] for c in out["categories"]}
    anns = []
    for a in out["annotations"]:
        if a["image_id"] == 2 and a["category_id"] == cats["license_plate"]:
            continue
        if a["image_id"] == 3:
            continue
        a = {k: v for k, v in a.items() if k != "score"}
        anns.append(a)
    out["categories"].append({"id": 50, "name": "DOG", "supercategory": ""})
    anns.append({"id": 0, "image_id": 2, "category_id": 50, "segmentation": [], "area": 100.0,
                 "bbox": [10.0, 10.0, 10.0, 10.0], "iscrowd": 0, "attributes": {"occluded": False, "rotation": 0.0}})
    for i, a in enumerate(anns, 1):
        a["id"] = i
    out["annotations"] = anns
    return out


def test_cvat_round_trip(tmp_path, params, dataset):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(dataset, names, parents)
    before = copy.deepcopy(coco)
    images = tool_files.selection(coco, None)
    out = tmp_path / "cvat"
    doc = cvat.write_cvat_export(dataset, coco, images, out, names, parents)
    on_disk = json.loads((out / "annotations" / "instances_default.json").read_text())
    assert on_disk == doc
    with zipfile.ZipFile(out / "coco_1.0_annotations.zip") as zf:
        assert zf.namelist() == ["annotations/instances_default.json"]
    for img in doc["images"]:
        assert (out / "images" / img["file_name"]).is_file()
        assert set(img) == {"id", "width", "height", "file_name", "license", "flickr_url", "coco_url",
                            "date_captured"}
    a0 = doc["annotations"][0]
    assert a0["segmentation"] == [] and a0["attributes"] == {"occluded": False, "rotation": 0.0}
    assert {c["name"] for c in doc["categories"]} == set(names)
    assert [lab["name"] for lab in json.loads((out / "cvat_labels.json").read_text())] == names

    back = cvat_after_annotation(doc)
    zpath = tmp_path / "task_7_coco_1.0.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(back))
    export = review.read_export(zpath, r"annotations/instances_.*\.json$")
    reviews = review.coco_reviews(export, coco, names, zpath, "cvat")
    new, counts = review.apply_reviews(coco, reviews)
    assert counts["verified"] == 4 and counts["deleted_boxes"] == 3
    save_coco(dataset, before, new)
    after = read(dataset)
    by_name = {tool_files.export_name(i): i for i in after["images"]}
    ids = [by_name[img["file_name"]]["id"] for img in doc["images"]]
    assert ids == [i["id"] for i in images]
    assert all(by_name[img["file_name"]]["verified"] for img in doc["images"])
    assert boxes_of(after, ids[0]) == boxes_of(before, ids[0])        # untouched: kept with ids
    kept = [a for a in after["annotations"] if a["image_id"] == ids[0]]
    assert {a["origin"] for a in kept} == {"frigate", "model"}
    assert [n for n, _ in boxes_of(after, ids[1])] == ["car", "dog"]   # plate deleted, dog added
    assert boxes_of(after, ids[2]) == []                               # a verified negative now
    assert image_and_boxes(after, 7) == image_and_boxes(before, 7)
    # again: nothing changes
    v2 = review.coco_reviews(export, after, names, zpath, "cvat")
    new2, c2 = review.apply_reviews(after, v2)
    assert new2 == after and c2["kept_verified"] == 4


def test_cvat_unknown_label_refused_and_nothing_written(tmp_path, params, dataset):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(dataset, names, parents)
    doc = cvat.cvat_coco(coco, tool_files.selection(coco, None), tool_files.unique_export_names(tool_files.selection(coco, None)))
    doc["categories"].append({"id": 77, "name": "bicycle", "supercategory": ""})
    doc["annotations"][1]["category_id"] = 77
    with pytest.raises(IngestError, match=r"annotation 2 \(image 1\): label 'bicycle'"):
        review.coco_reviews(doc, coco, names, Path("x.json"), "cvat")


# ------------------------------------------------------------------ identity through the round trip

@pytest.fixture
def two_cameras(tmp_path, params):
    """Two unverified images with the same file name 0001.jpg, porch (id 20) and garage (id 10),
    each with one model box; the ranking puts the porch first."""
    root = tmp_path / "user"
    write_verified_dataset(root, params)
    coco = read(root)
    for iid, cam, shade in ((10, "garage", 40), (20, "porch", 200)):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (shade, 90, 120)).save(buf, format="JPEG")
        add_model_suggestion(root, coco, params, iid, cam, buf.getvalue())
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


RANK_PORCH_FIRST = [{"image_id": 20, "priority": 2.0, "rank": 1}, {"image_id": 10, "priority": 1.0, "rank": 2}]


def test_cvat_same_file_name_two_cameras_lands_on_the_right_image(tmp_path, params, two_cameras):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(two_cameras, names, parents)
    images = tool_files.selection(coco, RANK_PORCH_FIRST, max_images=1)   # only the porch goes out
    assert [i["id"] for i in images] == [20]
    doc = cvat.write_cvat_export(two_cameras, coco, images, tmp_path / "cvat", names, parents)
    assert doc["images"][0]["file_name"] == "ct20_0001.jpg"
    back = copy.deepcopy(doc)                      # the reviewer moves the porch box
    back["annotations"][0]["bbox"] = [30.0, 20.0, 12.0, 12.0]
    new, counts = review.apply_reviews(coco, review.coco_reviews(back, coco, names, "x.json", "cvat"))
    imgs = {i["id"]: i for i in new["images"]}
    assert imgs[20]["verified"] and not imgs[10]["verified"]
    assert boxes_of(new, 20) == [("car", [30.0, 20.0, 12.0, 12.0])]
    assert boxes_of(new, 10) == boxes_of(coco, 10)
    # a CVAT export whose files are named as the old export named them (plain 0001.jpg) is refused
    back["images"][0]["file_name"] = "0001.jpg"
    with pytest.raises(IngestError, match=r"image 1 '0001.jpg': not a file name camtune"):
        review.coco_reviews(back, coco, names, "x.json", "cvat")
    # an id whose base name is another image's is refused too (a file from elsewhere)
    back["images"][0]["file_name"] = "ct7_0001.jpg"
    with pytest.raises(IngestError, match="ct7_0001.jpg"):
        review.coco_reviews(back, coco, names, "x.json", "cvat")


def test_label_studio_same_file_name_two_cameras(tmp_path, params, two_cameras):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(two_cameras, names, parents)
    images = tool_files.selection(coco, RANK_PORCH_FIRST, max_images=1)
    tasks = label_studio.ls_tasks(two_cameras, coco, images, RANK_PORCH_FIRST, model_version="m",
                           url_prefix="/data/local-files/?d=", document_root=str(tmp_path))

    def move(i, task, result):
        result[0]["value"]["x"] = 50.0
        return result, False
    export = ls_export_from_tasks(tasks, move)
    reviews, _ = label_studio.ls_reviews(export, coco, names, "e.json")
    assert [v.image_id for v in reviews] == [20]
    new, _ = review.apply_reviews(coco, reviews)
    assert {i["id"] for i in new["images"] if i["verified"]} == {7, 20}
    assert boxes_of(new, 20)[0][1][0] == 32.0 and boxes_of(new, 10) == boxes_of(coco, 10)
    # a task without our id names its image by file only: 0001.jpg is two images, refused, named
    del export[0]["data"]["camtune_image_id"]
    with pytest.raises(IngestError, match=r"task 1 .*'0001.jpg' is shared by images \[10, 20\]"):
        label_studio.ls_reviews(export, coco, names, "e.json")
    # an id that is not the task's image (a task from another project) is refused
    export[0]["data"]["camtune_image_id"] = 7
    with pytest.raises(IngestError, match="camtune_image_id 7 is 'images/keep.png'"):
        label_studio.ls_reviews(export, coco, names, "e.json")
    # LS's COCO export keeps only the base name: 0001.jpg cannot say which camera, refused
    with pytest.raises(IngestError, match="shared by images"):
        review.coco_reviews(ls_coco_from_export(ls_export_from_tasks(tasks, move), names), coco, names,
                            "r.json", "label_studio")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "12", True, 1e300])
def test_label_studio_non_finite_coordinates_refused(tmp_path, params, dataset, bad):
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(dataset, names, parents)
    tasks = label_studio.ls_tasks(dataset, coco, tool_files.selection(coco, None), None, model_version="m",
                           url_prefix="/data/local-files/?d=", document_root=str(tmp_path))

    def edit(i, task, result):
        result[0]["value"]["width"] = bad
        return result, False
    # through JSON text, as the file arrives (Python's json writes and reads NaN / Infinity)
    export = json.loads(json.dumps(ls_export_from_tasks(tasks, edit)))
    with pytest.raises(IngestError, match=r"task 1 annotation 1001 region c\d+: value.width"):
        label_studio.ls_reviews(export, coco, names, "export.json")
    doc = cvat.cvat_coco(coco, tool_files.selection(coco, None), tool_files.unique_export_names(tool_files.selection(coco, None)))
    doc["annotations"][0]["bbox"][2] = bad
    with pytest.raises(IngestError, match=r"annotation 1 \(image 1\): bbox"):
        review.coco_reviews(json.loads(json.dumps(doc)), coco, names, "x.json", "cvat")
