"""camtune.steps.ingest_public.public_coco + camtune.steps.ingest_public.flow: a tiny COCO-format source with foreign
categories, mapped onto our labels; the partial-labelling rule; resume without rewriting."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from camtune.core import config
from camtune.core.dataset import DatasetError, load_dataset
from camtune.steps.ingest_public import public_coco

from tests.support.repo import ROOT

# source categories: 1 person, 2 car, 3 truck, 4 motorcycle, 7 pizza (ids not ours on purpose)
CATS = [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}, {"id": 3, "name": "truck"},
        {"id": 4, "name": "motorcycle"}, {"id": 7, "name": "pizza"}]
# image id -> annotations (category, bbox, iscrowd)
IMAGES = {
    10: [(1, [1, 1, 10, 20], 0), (3, [20, 5, 30, 15], 0)],    # person + truck (-> car)
    11: [(2, [0, 0, 8, 8], 0)],                               # car
    12: [(7, [5, 5, 10, 10], 0)],                             # pizza only: a negative
    13: [(4, [5, 5, 10, 10], 0), (1, [30, 1, 5, 9], 0)],      # unmapped tracked motorcycle: dropped
    14: [(1, [0, 0, 40, 30], 1)],                             # crowd of persons: dropped
    15: [],                                                   # nothing: a negative
    16: [(1, [2, 2, 6, 6], 0), (7, [1, 1, 3, 3], 0)],         # person + pizza (pizza dropped)
    17: [],                                                   # negative
}


def make_source(root: Path) -> tuple[Path, Path]:
    imgs = root / "train"
    imgs.mkdir(parents=True)
    images, anns, aid = [], [], 100
    for iid, boxes in IMAGES.items():
        fn = f"{iid:012d}.jpg"
        Image.new("RGB", (64, 48), (iid * 9 % 255, 40, 90)).save(imgs / fn)
        images.append({"id": iid, "file_name": fn, "width": 64, "height": 48, "license": 3,
                       "coco_url": f"http://images.cocodataset.org/train2017/{fn}",
                       "flickr_url": f"http://farm1.staticflickr.com/{iid}.jpg",
                       "date_captured": "2013-11-14 11:18:45"})
        for cat, bb, crowd in boxes:
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "bbox": bb, "iscrowd": crowd,
                         "area": bb[2] * bb[3]})
            aid += 1
    src = root / "instances.json"
    src.write_text(json.dumps({"info": {"description": "tiny"}, "licenses": [{"id": 3, "name": "CC BY"}],
                               "images": images, "annotations": anns, "categories": CATS}))
    return src, imgs


def params(tmp: Path, src: Path, imgs: Path, **extra) -> config.Params:
    over = {"ingest_public.annotations": str(src), "ingest_public.images": str(imgs),
            "ingest_public.out": str(tmp / "data" / "public"), "ingest_public.name": "tiny",
            "ingest_public.map": {"person": "person", "car": "car", "truck": "car"},
            "ingest_public.tracked": ["person", "car", "truck", "motorcycle"],
            "ingest_public.negative_share": 0.25, "ingest_public.max_images": 100}
    over.update(extra)
    return config.load(ROOT / "params.yaml", over)


def test_foreign_categories_mapped_and_counted(tmp_path):
    src, imgs = make_source(tmp_path / "src")
    p = params(tmp_path, src, imgs)
    s = public_coco.ingest(p.ingest_public, p.labels, progress=False)
    pool = tmp_path / "data" / "public" / "tiny"
    ds = load_dataset(pool)  # our schema
    # positives 10, 11, 16; negatives 12, 15, 17 capped at 25% of the pool: 1 of them
    assert s["positives"] == 3 and s["negatives"] == 1 and s["images"] == 4
    assert s["dropped_incomplete"] == 2
    assert s["dropped_incomplete_by_reason"] == {"crowd person": 1, "unmapped motorcycle": 1}
    assert s["annotations_of_unmapped_categories"] == 2   # the two pizzas
    assert set(ds.images["id"]) & {13, 14} == set()
    assert {10, 11, 16} <= set(ds.images["id"])
    assert s["boxes_per_label"]["person"] == 2 and s["boxes_per_label"]["car"] == 2
    assert sorted(ds.annotations["label"]) == ["car", "car", "person", "person"]
    assert (ds.images["user_id"] == "public.tiny").all() and ds.images["verified"].all()
    assert "face" in s["unlabelled_labels"] and "person" not in s["unlabelled_labels"]
    # the truck became a car with its box; category ids are ours (1..K in labels.names order)
    raw = json.loads((pool / "annotations.json").read_text())
    truck = next(a for a in raw["annotations"] if a["image_id"] == 10 and a["bbox"][0] == 20)
    assert truck["category_id"] == p.labels.names.index("car") + 1
    # licence and URLs kept per image, the source's licences at the top
    im10 = next(i for i in raw["images"] if i["id"] == 10)
    assert im10["license"] == 3 and im10["coco_url"].endswith("000000000010.jpg")
    assert im10["flickr_url"] and im10["captured_at"] == "2013-11-14T11:18:45Z"
    assert raw["licenses"] == [{"id": 3, "name": "CC BY"}]
    assert (pool / im10["file_name"]).read_bytes() == (imgs / "000000000010.jpg").read_bytes()
    from camtune.core.dataset import file_sha256
    assert all(i["sha256"] == file_sha256(pool / i["file_name"]) for i in raw["images"])


def test_unmapped_tracked_class_drops_its_images(tmp_path):
    """Without truck=car a truck is an unlabelled object we detect: its image goes, not its box."""
    src, imgs = make_source(tmp_path / "src")
    p = params(tmp_path, src, imgs, **{"ingest_public.map": {"person": "person", "car": "car"}})
    s = public_coco.ingest(p.ingest_public, p.labels, progress=False)
    ids = set(load_dataset(tmp_path / "data" / "public" / "tiny").images["id"])
    assert 10 not in ids and s["dropped_incomplete_by_reason"]["unmapped truck"] == 1
    # not tracked: a truck is then just background, the image stays with its person
    p2 = params(tmp_path, src, imgs, **{"ingest_public.map": {"person": "person", "car": "car"},
                                        "ingest_public.tracked": ["person", "car"],
                                        "ingest_public.name": "loose"})
    public_coco.ingest(p2.ingest_public, p2.labels, progress=False)
    ds = load_dataset(tmp_path / "data" / "public" / "loose")
    assert 10 in set(ds.images["id"]) and 13 in set(ds.images["id"])
    assert list(ds.annotations.loc[ds.annotations["image_id"] == 10, "label"]) == ["person"]


def test_deterministic_resumable_never_rewrites(tmp_path):
    src, imgs = make_source(tmp_path / "src")
    p = params(tmp_path, src, imgs, **{"ingest_public.max_images": 3})
    first = public_coco.ingest(p.ingest_public, p.labels, progress=False)
    pool = tmp_path / "data" / "public" / "tiny"
    stamp = {f: f.stat().st_mtime_ns for f in pool.rglob("*") if f.is_file()}
    ann = (pool / "annotations.json").read_bytes()
    # a crash after some images: remove one, rerun -> only that one is written again
    victim = next((pool / "images").iterdir())
    victim.unlink()
    again = public_coco.ingest(p.ingest_public, p.labels, progress=False)
    assert again["images_written"] == 1 and again["images_kept"] == first["images"] - 1
    assert again["files_rewritten"] == []
    assert (pool / "annotations.json").read_bytes() == ann
    for f, t in stamp.items():
        if f != victim:
            assert f.stat().st_mtime_ns == t, f
    # a file in the pool that differs from its source is refused, not overwritten
    victim.unlink()  # (a hard link: writing into it would change the source too)
    victim.write_bytes(b"x")
    with pytest.raises(DatasetError, match="never overwritten"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    # raising max_images only adds images (salted hash order)
    victim.unlink()
    bigger = params(tmp_path, src, imgs, **{"ingest_public.max_images": 6})
    public_coco.ingest(bigger.ingest_public, bigger.labels, progress=False)
    small_ids = {i["id"] for i in json.loads(ann)["images"]}
    big_ids = {i["id"] for i in json.loads((pool / "annotations.json").read_text())["images"]}
    assert small_ids < big_ids


def test_bad_input_is_named_and_nothing_written(tmp_path):
    src, imgs = make_source(tmp_path / "src")
    p = params(tmp_path, src, imgs, **{"ingest_public.map": {"lorry": "car"}})
    with pytest.raises(DatasetError, match=r"lorry"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    p = params(tmp_path, src, imgs, **{"ingest_public.map": {"truck": "lorry"}})
    with pytest.raises(DatasetError, match=r"not in labels.names.*lorry"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    raw = json.loads(src.read_text())
    raw["annotations"][0]["category_id"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    p = params(tmp_path, bad, imgs)
    with pytest.raises(DatasetError, match=r"annotation 100 has unknown category_id 99"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    (imgs / "000000000011.jpg").unlink()
    p = params(tmp_path, src, imgs)
    with pytest.raises(DatasetError, match=r"image 11: .*000000000011.jpg.*nothing was written"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    assert not (tmp_path / "data" / "public" / "tiny").exists()


def test_cli(tmp_path, monkeypatch, prefect_server):
    from camtune.runners import cli

    src, imgs = make_source(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    rc = cli.main(["ingest_public", "--annotations", str(src), "--images", str(imgs), "--map", "person=person",
                             "--map", "car=car", "--map", "truck=car", "--tracked", "motorcycle",
                             "--max-images", "5", "--name", "coco2017"])
    assert rc == 0
    ds = load_dataset(tmp_path / "data" / "public" / "coco2017")
    assert len(ds.images) <= 5 and (ds.images["user_id"] == "public.coco2017").all()
    assert 13 not in set(ds.images["id"])
    assert cli.main(["ingest_public", "--annotations", str(src), "--images", str(imgs), "--map", "truck"]) == 2
    assert os.path.exists(tmp_path / "data" / "public" / "coco2017" / "ingest.json")
