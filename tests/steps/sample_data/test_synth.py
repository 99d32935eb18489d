"""camtune.steps.sample_data: the synthetic sample data is deterministic, complete and valid."""
import hashlib
import io
import json
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camtune.core import config
from camtune.steps.sample_data import plan, scene, sprites, write
from camtune.core.dataset import ANNOTATIONS_FILE, load_dataset, schema_errors
from camtune.core.errors import StepFailed

TINY = {"sample_data.global_images": 12, "sample_data.user_images": 8, "sample_data.user_images_in_pool": 3,
        "sample_data.global_users": 2}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _coco(folder: Path) -> dict:
    return json.loads((folder / ANNOTATIONS_FILE).read_text())


def test_same_params_same_bytes(sample_datasets, tmp_path):
    # a second, independent generation with the fixture's params, byte for byte
    write.generate(sample_datasets.params, tmp_path / "g", tmp_path / "u")
    for ours, theirs in ((tmp_path / "g", sample_datasets.global_pool), (tmp_path / "u" / "u_demo", sample_datasets.user)):
        a, b = _tree(ours), _tree(theirs)
        assert a.keys() == b.keys() and len(a) > 10
        assert [k for k in a if a[k] != b[k]] == []


def test_different_seed_different_images():
    a = write.build(config.load(config.ROOT / "params.yaml", TINY))
    b = write.build(config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.seed": 8}))
    assert a.records.keys() == b.records.keys()
    assert all(a.files[i] != b.files[i] for i in a.files)


def test_jpeg_encoding_is_deterministic():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8))
    assert write.encode_jpeg(img, 90) == write.encode_jpeg(img.copy(), 90)
    assert write.encode_jpeg(img, 90) != write.encode_jpeg(img, 50)


@pytest.mark.parametrize("which", ["global_pool", "user"])
def test_schema_valid_and_loadable(sample_datasets, which):
    folder = getattr(sample_datasets, which)
    coco = _coco(folder)
    assert schema_errors(coco) == []
    ds = load_dataset(folder)
    assert len(ds.images) == len(coco["images"]) and ds.annotations["label"].notna().all()
    cats = {c["name"]: c["attribute_of"] for c in coco["categories"]}
    labels = sample_datasets.params.labels
    assert list(cats) == labels.names
    assert all(cats[n] == labels.attribute_parents.get(n, []) for n in cats)


def test_every_label_present_in_both(sample_datasets):
    for folder in (sample_datasets.global_pool, sample_datasets.user):
        counts = load_dataset(folder).annotations["label"].value_counts()
        assert set(counts.index) == set(sample_datasets.params.labels.names), folder


def test_default_size_label_counts():
    # the real default plan: every label with plenty of instances for base training
    params = config.load(config.ROOT / "params.yaml")
    _, others = plan.plan(params.sample_data, params.sample_data.users, params.labels.names)
    leads = Counter(s.lead for s in others if s.lead)
    assert min(leads.values()) >= 40 and len(leads) == 8


@pytest.mark.parametrize("which", ["global_pool", "user"])
def test_boxes_tight_inside_and_attributes_inside_parents(sample_datasets, which):
    ds = load_dataset(getattr(sample_datasets, which))
    parents = sample_datasets.params.labels.attribute_parents
    img = ds.images.set_index("id")
    a = ds.annotations.join(img[["width", "height"]], on="image_id")
    assert (a.x >= 0).all() and (a.y >= 0).all()
    assert (a.x + a.w <= a.width).all() and (a.y + a.h <= a.height).all()
    is_attr = a.label.isin(list(parents))
    # attributes >= ~18 px (learnable at 320 wide), objects larger still
    assert a[is_attr][["w", "h"]].min(axis=1).min() >= 17
    assert a[~is_attr][["w", "h"]].min(axis=1).min() >= 30
    for r in a[is_attr].itertuples():
        same = a[(a.image_id == r.image_id) & a.label.isin(parents[r.label])]
        inside = (same.x <= r.x) & (same.y <= r.y) & (same.x + same.w >= r.x + r.w) & (same.y + same.h >= r.y + r.h)
        assert inside.any(), f"annotation {r.id} ({r.label}) of image {r.image_id} has no parent around it"


def test_boxes_are_tight_in_the_rendered_frame(monkeypatch):
    # flat background, no lighting/noise: every object box must touch drawn pixels on all four
    # edges (tight) and nothing may be drawn outside the union of the boxes (complete)
    flat = (1, 254, 1)
    params = config.load(config.ROOT / "params.yaml", TINY)
    sd = params.sample_data
    monkeypatch.setattr(scene, "background",
                        lambda seed, cam, w, h, snow: (Image.new("RGB", (w, h), flat), int(h * 0.4)))
    monkeypatch.setattr(scene, "_apply_condition", lambda rng, img, condition: img)
    monkeypatch.setattr(scene, "_infrared", lambda rng, img: img)
    per_user, others = plan.plan(sd, sd.users, params.labels.names)
    user = [s for shots in per_user.values() for s in shots]
    checked = 0
    for shot in [*user, *others]:
        img, boxes = scene.render(shot, sd, params.labels.names)
        drawn = (np.asarray(img) != flat).any(axis=2)
        covered = np.zeros_like(drawn)
        for b in boxes:
            covered[b.y:b.y + b.h, b.x:b.x + b.w] = True
            box = drawn[b.y:b.y + b.h, b.x:b.x + b.w]
            if b.label not in params.labels.attribute_parents:  # attributes sit on their parent
                assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any(), (shot.id, b)
                checked += 1
        assert not (drawn & ~covered).any(), shot.id
        assert shot.negative == (not boxes)
    assert checked >= 20


def test_parts_inside_their_sprite():
    rng = np.random.default_rng(3)
    for flip in (False, True):
        sp = sprites.car(rng, 200, plate=True, logo="fedex", plate_min=18, flip=flip)
        x0, y0, x1, y1 = sp.image.getchannel("A").getbbox()
        assert [p[0] for p in sp.parts] == ["license_plate", "fedex"]
        for _, px0, py0, px1, py1 in sp.parts:
            assert x0 <= px0 < px1 <= x1 and y0 <= py0 < py1 <= y1 and min(px1 - px0, py1 - py0) >= 18
    sp = sprites.person(rng, 150, face=True)
    assert [p[0] for p in sp.parts] == ["face"]


def test_negatives_unverified_timestamps(sample_datasets):
    for folder in (sample_datasets.global_pool, sample_datasets.user):
        coco = _coco(folder)
        with_boxes = {a["image_id"] for a in coco["annotations"]}
        imgs = coco["images"]
        assert any(i["verified"] and i["id"] not in with_boxes for i in imgs), "no verified negatives"
        unverified = [i for i in imgs if not i["verified"]]
        assert unverified and all(i["verified_at"] is None for i in unverified)
        for i in imgs:
            cap = datetime.fromisoformat(i["captured_at"])
            assert cap.tzinfo is not None
            if i["verified"]:
                assert datetime.fromisoformat(i["verified_at"]) > cap
            assert i["condition"] in plan.CONDITIONS


def test_files_sizes_and_sha(sample_datasets):
    p = sample_datasets.params.sample_data
    for folder, n in ((sample_datasets.global_pool, p.global_images), (sample_datasets.user, p.user_images)):
        ds = load_dataset(folder)
        assert len(ds.images) == n
        assert len(list((folder / "images").iterdir())) == n
        for r in ds.images.itertuples():
            assert r.file_name.startswith("images/") and not Path(r.file_name).is_absolute()
            with Image.open(folder / r.file_name) as im:
                assert im.format == "JPEG" and im.size == (r.width, r.height) == (p.width, p.height)
            assert hashlib.sha256((folder / r.file_name).read_bytes()).hexdigest() == r.sha256


def test_users_cameras_conditions(sample_datasets):
    params = sample_datasets.params
    pool, user = load_dataset(sample_datasets.global_pool), load_dataset(sample_datasets.user)
    others = pool.images[pool.images.user_id != params.user.id]
    assert others.user_id.nunique() == params.sample_data.global_users
    assert (others.groupby("user_id").camera.nunique() == params.sample_data.cameras_per_user).all()
    assert set(user.images.user_id) == {params.user.id}
    assert user.images.camera.nunique() == params.sample_data.cameras_per_user
    assert (user.images.groupby("camera").condition.nunique() >= 3).all()
    assert set(pool.images.condition) == set(plan.CONDITIONS)
    # the user dataset passes the 10-new-verified-images rule
    assert user.images.verified.sum() >= 10


def test_user_images_in_pool_are_identical(sample_datasets):
    params = sample_datasets.params
    pool, user = _coco(sample_datasets.global_pool), _coco(sample_datasets.user)
    pool_imgs = {i["id"]: i for i in pool["images"]}
    user_imgs = {i["id"]: i for i in user["images"]}
    shared = sorted(pool_imgs.keys() & user_imgs.keys())
    assert len(shared) == params.sample_data.user_images_in_pool
    # the pooled ones are the user's earliest submissions
    assert shared == sorted(user_imgs, key=lambda i: user_imgs[i]["captured_at"])[: len(shared)]
    assert all(pool_imgs[i]["user_id"] == params.user.id for i in shared)
    assert [i for i in pool_imgs if pool_imgs[i]["user_id"] == params.user.id] == shared
    for i in shared:
        assert pool_imgs[i] == user_imgs[i]
        f = user_imgs[i]["file_name"]
        assert (sample_datasets.global_pool / f).read_bytes() == (sample_datasets.user / f).read_bytes()
        assert [a for a in pool["annotations"] if a["image_id"] == i] == \
            [a for a in user["annotations"] if a["image_id"] == i]
    # ids are unique across the two datasets except for the shared images
    ann_ids = [a["id"] for a in pool["annotations"]]
    ann_ids += [a["id"] for a in user["annotations"] if a["image_id"] not in shared]
    assert len(ann_ids) == len(set(ann_ids))
    assert len(pool_imgs) + len(user_imgs) - len(shared) == len(pool_imgs.keys() | user_imgs.keys())


def test_other_sizes_honoured(tmp_path):
    params = config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.width": 320, "sample_data.height": 180,
                                                       "sample_data.user_images_in_pool": 0,
                                                       "sample_data.negative_fraction": 0.0,
                                                       "sample_data.unverified_fraction": 0.0})
    syn = write.build(params)
    assert len(syn.pool_ids) == 12 and len(syn.user_ids) == 8 and not set(syn.pool_ids) & set(syn.user_ids)
    assert all(r["verified"] for r in syn.records.values())
    assert all(syn.annotations[i] for i in syn.records)
    with Image.open(io.BytesIO(syn.files[syn.user_ids[0]])) as im:
        assert im.size == (320, 180)


def test_object_scale_shrinks_objects_not_frames():
    """At 1280x720 objects scale with the height (twice 360p's); object_scale brings them back."""
    def heights(scale):
        p = config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.width": 1280,
                                                       "sample_data.height": 720,
                                                       "sample_data.object_scale": scale})
        syn = write.build(p)
        with Image.open(io.BytesIO(syn.files[syn.user_ids[0]])) as im:
            assert im.size == (1280, 720)
        return np.median([a["bbox"][3] for anns in syn.annotations.values() for a in anns])

    full, small = heights(1.0), heights(0.35)
    assert 0.25 < small / full < 0.45


def test_user_look_infrared_only_on_the_users_cameras():
    def grey(look):
        syn = write.build(config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.user_look": look}))
        out = {}
        for name, ids in (("user", syn.user_ids), ("others", [i for i in syn.pool_ids if i not in syn.user_ids])):
            with Image.open(io.BytesIO(syn.files[ids[0]])) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.int16)
            out[name] = np.abs(a[..., 0] - a[..., 1]).mean() < 2 and np.abs(a[..., 1] - a[..., 2]).mean() < 2
        return out

    assert grey("ir") == {"user": True, "others": False}
    assert grey("none") == {"user": False, "others": False}


def test_refuses_to_overwrite_a_real_dataset(tmp_path):
    params = config.load(config.ROOT / "params.yaml", TINY)
    users = tmp_path / "users"
    real = users / "u_demo"  # where the demo user's dataset would go
    (real / "images").mkdir(parents=True)
    (real / ANNOTATIONS_FILE).write_text('{"images": [], "annotations": [], "categories": []}')
    before = _tree(real)
    with pytest.raises(StepFailed, match="not generated by camtune sample_data"):
        write.generate(params, tmp_path / "global", users)
    assert _tree(real) == before and not (tmp_path / "global").exists()
    # a real dataset beside the demo users' folders is never touched either
    real.rename(users / "mine")
    with pytest.raises(StepFailed, match="not generated by camtune sample_data"):
        write.generate(params, tmp_path / "global", users)
    assert _tree(users / "mine") == before
    # its own earlier output is replaced whole
    shutil.rmtree(users / "mine")
    write.generate(params, tmp_path / "global", users)
    (users / "u_demo" / "stale.txt").write_text("x")
    write.generate(params, tmp_path / "global", users)
    assert not (users / "u_demo" / "stale.txt").exists()


def test_one_shared_world_for_many_demo_users(tmp_path):
    """The pool does not depend on who requests a model, and with one demo user it is the world the
    single-user generator drew (so the default run's data did not change)."""
    one = config.load(config.ROOT / "params.yaml", TINY)
    many = config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.users": ["u_demo", "u_alice", "u_bob"]})
    other_user = config.load(config.ROOT / "params.yaml", {**TINY, "sample_data.users": ["u_demo", "u_alice", "u_bob"],
                                                           "user.id": "u_bob"})
    a, b = write.build(many), write.build(other_user)
    assert a.files == b.files and a.pool_ids == b.pool_ids  # user.id plays no part
    assert set(a.by_user) == {"u_demo", "u_alice", "u_bob"}
    for uid, ids in a.by_user.items():
        assert len(ids) == 8 and {a.records[i]["user_id"] for i in ids} == {uid}
        assert len(set(ids) & set(a.pool_ids)) == 3  # user_images_in_pool of each
    assert len(a.pool_ids) == 12
    # one demo user: ids, pixels and records as planned for the requesting user alone
    s1 = write.build(one)
    assert s1.by_user == {"u_demo": s1.user_ids} and s1.user_ids == list(range(1, 9))
    write.generate(many, tmp_path / "g", tmp_path / "users")
    assert sorted(p.name for p in (tmp_path / "users").iterdir()) == ["u_alice", "u_bob", "u_demo"]
    # a user dropped from the list: its generated folder goes, the others stay
    write.generate(one, tmp_path / "g", tmp_path / "users")
    assert sorted(p.name for p in (tmp_path / "users").iterdir()) == ["u_demo"]


def test_pool_share_must_fit():
    with pytest.raises(config.ConfigError, match="user_images_in_pool"):
        config.load(config.ROOT / "params.yaml", {"sample_data.user_images": 5, "sample_data.user_images_in_pool": 6})


def test_summary_markdown_counts():
    params = config.load(config.ROOT / "params.yaml", TINY)
    s = write.summary(write.build(params), params.user.id)
    assert s["datasets"]["user"]["images"] == 8 and s["user_images_in_pool"] == 3
    assert s["datasets"]["global_pool"]["images"] == 12
    md = write.summary_markdown(s)
    for word in ("| person |", "| night |", "u_demo/", "| negatives |"):
        assert word in md
