"""The sample step's pure functions: properties of the three sets over generated pools."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from camtune.core import config
from camtune.steps.sample import draw as sampling
from camtune.core.config import SampleParams
from camtune.steps.sample.draw import SamplingError, sample_pool

LABELS = ["person", "car", "deer"]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.filter_too_much])


def make_pool(rows: list[tuple], *, first_ann_id: int = 0):
    """rows: (id, user, camera, verified, condition, [labels]) -> (images, annotations) tables
    shaped like camtune.core.dataset's."""
    images = pd.DataFrame({
        "id": pd.Series([r[0] for r in rows], dtype="int64"),
        "file_name": [f"images/{r[0]}.jpg" for r in rows], "width": 64, "height": 64,
        "user_id": [r[1] for r in rows], "camera": [r[2] for r in rows],
        "captured_at": "2026-01-01T00:00:00Z", "verified": [bool(r[3]) for r in rows],
        "verified_at": None, "condition": [r[4] for r in rows], "sha256": None,
    })
    anns = [(r[0], lab) for r in rows for lab in r[5]]
    annotations = pd.DataFrame({
        "id": pd.Series(range(first_ann_id, first_ann_id + len(anns)), dtype="int64"),
        "image_id": pd.Series([a[0] for a in anns], dtype="int64"),
        "category_id": pd.Series([LABELS.index(a[1]) + 1 if a[1] in LABELS else 99 for a in anns], dtype="int64"),
        "x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0,
        "label": pd.Series([a[1] for a in anns], dtype=object),
    })
    return images, annotations


_image = st.tuples(
    st.integers(0, 5),                                        # user index (u0 = the requester)
    st.sampled_from(["front", "drive", "back"]),              # camera
    st.sampled_from([True] * 6 + [False]),                    # verified, mostly
    st.sampled_from(["day", "day", "night", "dusk", None]),   # condition
    st.lists(st.sampled_from(LABELS + ["zebra"]), max_size=3),  # "zebra": not in labels.names
)


@st.composite
def pool_rows(draw, min_images=20, max_images=60, ids=None):
    """(id, user, camera, verified, condition, labels) rows of 3-6 users."""
    n_users = draw(st.integers(3, 6))
    if ids is None:
        ids = draw(st.lists(st.integers(0, 10**6), min_size=min_images, max_size=max_images, unique=True))
    cells = draw(st.lists(_image, min_size=len(ids), max_size=len(ids)))
    return [(i, f"u{u % n_users}", cam, ver, cond, labels)
            for i, (u, cam, ver, cond, labels) in zip(ids, cells)]


sample_params = st.builds(
    SampleParams,
    split_unit=st.sampled_from(["image", "camera", "user"]),
    eval_fraction=st.floats(0.15, 0.6),
    salt=st.text(min_size=1, max_size=8),
    seed=st.integers(0, 1000),
    base_train_max_images=st.integers(1, 80),
    max_user_share=st.floats(0.34, 1.0),
    min_per_label=st.integers(0, 6),
    upsample_rare=st.booleans(),
    replay_ratio=st.floats(0, 2),
)


def run(images, annotations, params, user="u0", user_verified=7):
    try:
        return sample_pool(images, annotations, user_id=user, label_names=LABELS, params=params,
                           user_verified=user_verified, source="pool/annotations.json")
    except SamplingError:
        reject()   # a pool too small for these params; the error cases are tested below


def units(images, split_unit):
    if split_unit == "image":
        return images["id"].astype(str)
    if split_unit == "user":
        return images["user_id"]
    return images["user_id"] + "/" + images["camera"]


@SETTINGS
@given(rows=pool_rows(), params=sample_params)
def test_sets_are_disjoint_verified_and_capped(rows, params):
    images, annotations = make_pool(rows)
    s = run(images, annotations, params)
    by_id = images.set_index("id")
    base, ev, rep = set(s.base_train), set(s.global_eval), set(s.replay)

    verified = set(images.loc[images["verified"], "id"])
    assert base | ev <= verified
    assert not base & ev
    assert rep <= base
    user_ids = set(images.loc[images["user_id"] == "u0", "id"])
    assert not ev & user_ids and not rep & user_ids
    # the split unit never straddles the two sets
    unit = units(images, params.split_unit).set_axis(images["id"])
    assert not set(unit[list(base)]) & set(unit[list(ev)])
    # global_eval is exactly the hash side, whatever else the pool holds
    side = sampling.eval_side(images, params.split_unit, params.salt, params.eval_fraction)
    assert ev == set(images.loc[side & images["verified"] & (images["user_id"] != "u0"), "id"])
    # caps
    assert len(base) <= params.base_train_max_images
    per_user = by_id.loc[list(base), "user_id"].value_counts()
    assert (per_user <= sampling.user_cap(params.max_user_share, len(base))).all()
    # replay size: round(ratio * user's verified), as far as base_train has other users' images
    others = len(base - user_ids)
    assert len(rep) == min(round(params.replay_ratio * 7), others)
    # sorted ids, repeats only on base_train images
    assert list(s.base_train) == sorted(base) and list(s.global_eval) == sorted(ev)
    assert set(s.repeats) <= base and all(k > 1 for k in s.repeats.values())


@SETTINGS
@given(rows=pool_rows(), params=sample_params.map(
    lambda p: p.model_copy(update={"max_user_share": 1.0, "base_train_max_images": 10_000})))
def test_min_per_label_met_where_the_pool_has_it(rows, params):
    images, annotations = make_pool(rows)
    s = run(images, annotations, params)
    side = sampling.eval_side(images, params.split_unit, params.salt, params.eval_fraction)
    train_ids = set(images.loc[~side & images["verified"], "id"])
    base = pd.Index(s.base_train)
    for label in LABELS:
        with_label = set(annotations.loc[annotations["label"] == label, "image_id"])
        have = len(with_label & set(base))
        assert have >= min(params.min_per_label, len(with_label & train_ids))
        if params.upsample_rare and have:
            weighted = sum(s.repeats.get(i, 1) for i in with_label & set(base))
            assert weighted >= params.min_per_label
        if have < params.min_per_label and have:
            assert any(f"label {label!r}" in w and f"{params.min_per_label - have} short" in w
                       for w in s.warnings)


@SETTINGS
@given(rows=pool_rows(), params=sample_params, seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(rows, params, seed):
    images, annotations = make_pool(rows)
    s1 = run(images, annotations, params)
    rng = np.random.default_rng(seed)
    images2 = images.iloc[rng.permutation(len(images))].reset_index(drop=True)
    annotations2 = annotations.iloc[rng.permutation(len(annotations))].reset_index(drop=True)
    s2 = run(images2, annotations2, params)
    for name in ("base_train", "global_eval", "replay", "user_images_in_base_train"):
        np.testing.assert_array_equal(getattr(s1, name), getattr(s2, name))
    assert s1.repeats == s2.repeats
    pd.testing.assert_frame_equal(s1.strata, s2.strata)


@SETTINGS
@given(data=st.data(), params=sample_params)
def test_appending_images_never_moves_an_image_across_the_split(data, params):
    old_ids = data.draw(st.lists(st.integers(0, 10**5), min_size=20, max_size=50, unique=True))
    new_ids = data.draw(st.lists(st.integers(10**5 + 1, 2 * 10**5), min_size=1, max_size=40, unique=True))
    rows = data.draw(pool_rows(ids=old_ids))
    extra = data.draw(pool_rows(ids=new_ids, min_images=1))
    before = run(*make_pool(rows), params)
    after = run(*make_pool(rows + extra), params)
    old = set(old_ids)
    assert set(after.global_eval) & old == set(before.global_eval)
    assert not set(after.base_train) & set(before.global_eval)


def test_same_inputs_give_byte_identical_manifests(tmp_path):
    rng = np.random.default_rng(3)
    rows = [(int(i), f"u{rng.integers(5)}", str(rng.choice(["a", "b"])), rng.random() < .9,
             str(rng.choice(["day", "night"])), list(rng.choice(LABELS, size=rng.integers(0, 3))))
            for i in rng.permutation(400)]
    images, annotations = make_pool(rows)
    params = config.load(config.ROOT / "params.yaml", {"sample.min_per_label": 5, "user.id": "u0"})
    outs = []
    for k, (im, an) in enumerate([(images, annotations),
                                  (images.sample(frac=1, random_state=1), annotations.sample(frac=1, random_state=2))]):
        s = sample_pool(im, an, user_id="u0", label_names=LABELS, params=params.sample, user_verified=30)
        result = sampling.SampleResult(s, sampling.manifests(s, params=params, pool_sha256="0" * 64,
                                                             user_verified=30))
        out = sampling.write_outputs(tmp_path / f"run{k}", result)
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert sorted(outs[0]) == ["base_train.json", "global_eval.json", "replay.json", "strata.csv"]
    assert outs[0] == outs[1]
    base = json.loads(outs[0]["base_train.json"])
    assert base["user_id"] is None and base["count"] == len(base["image_ids"]) > 0
    assert base["image_ids"] == sorted(base["image_ids"])
    replay = json.loads(outs[0]["replay.json"])
    assert replay["user_id"] == "u0" and replay["count"] == round(30 * params.sample.replay_ratio)
    # base_train does not depend on who asks (the base model is shared)
    s_other = sample_pool(images, annotations, user_id="u1", label_names=LABELS, params=params.sample,
                          user_verified=30)
    other = sampling.manifests(s_other, params=params.model_copy(update={"user": config.UserParams(id="u1")}),
                               pool_sha256="0" * 64, user_verified=30)
    assert other["base_train"] == base


def test_hashes_are_pinned():
    """The split must never change between versions (it would move images across sets)."""
    ids = np.array([0, 1, 12345, 2**40])
    got = sampling.hash_ids(ids, "s")
    key = int.from_bytes(hashlib.blake2b(b"s", digest_size=8).digest(), "big")
    mask = 2**64 - 1

    def splitmix(x):
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    assert [int(g) for g in got] == [splitmix(int(i) ^ key) for i in ids]
    assert int(sampling.hash_keys(["u1/front"], "salt")[0]) == int.from_bytes(
        hashlib.blake2b(b"salt\0u1/front", digest_size=8).digest(), "big")


@given(avail=st.lists(st.integers(0, 15), min_size=1, max_size=5), target=st.integers(0, 40),
       share=st.floats(0.1, 1.0))
@settings(max_examples=30, deadline=None)
def test_feasible_size_is_the_largest_fillable(avail, target, share):
    target = min(target, sum(avail))
    got = sampling._feasible_size(np.array(avail), target, share)
    ok = [n for n in range(1, target + 1)
          if sum(min(a, int(sampling.user_cap(share, n))) for a in avail) >= n]
    assert got == (max(ok) if ok else 0)


# ------------------------------------------------------------------------------ bad input

def _basic(n=60, users=4):
    return [(i, f"u{i % users}", "cam", True, "day", ["person", "car"] if i % 3 else ["deer"])
            for i in range(n)]


P = SampleParams(split_unit="image", eval_fraction=0.3, min_per_label=2, max_user_share=0.5)


def test_empty_pool_names_the_file():
    images, annotations = make_pool([])
    with pytest.raises(SamplingError, match=r"pool/annotations.json: the global pool has no images"):
        sample_pool(images, annotations, user_id="u0", label_names=LABELS, params=P, user_verified=1,
                    source="pool/annotations.json")


def test_no_verified_images_names_the_file():
    images, annotations = make_pool([(r[0], r[1], r[2], False, r[4], r[5]) for r in _basic()])
    with pytest.raises(SamplingError, match=r"pool/annotations.json: .*no verified images"):
        sample_pool(images, annotations, user_id="u0", label_names=LABELS, params=P, user_verified=1,
                    source="pool/annotations.json")


def test_unknown_user_is_an_error_a_new_user_a_warning():
    images, annotations = make_pool(_basic())
    with pytest.raises(SamplingError, match="unknown user id 'ghost'"):
        sample_pool(images, annotations, user_id="ghost", label_names=LABELS, params=P,
                    user_verified=0, user_known=False)
    s = sample_pool(images, annotations, user_id="newbie", label_names=LABELS, params=P,
                    user_verified=10, user_known=True)
    assert any("'newbie' has no images in the global pool" in w for w in s.warnings)
    assert len(s.replay) == 10


def test_label_missing_from_the_pool_is_an_error_naming_it():
    images, annotations = make_pool(_basic())
    with pytest.raises(SamplingError, match=r"'cat': 0 of 2 \(none verified in the pool\)"):
        sample_pool(images, annotations, user_id="u0", label_names=LABELS + ["cat"], params=P,
                    user_verified=1)
    # no minimum asked: nothing to refuse
    s = sample_pool(images, annotations, user_id="u0", label_names=LABELS + ["cat"],
                    params=P.model_copy(update={"min_per_label": 0}), user_verified=1)
    assert len(s.base_train)


def test_short_label_warns_with_the_shortfall_and_upsamples():
    rows = _basic()
    rows = [(r[0], r[1], r[2], r[3], r[4], ["person"]) for r in rows]
    rows[1] = (1, "u1", "cam", True, "day", ["deer"])          # one deer image
    rows[2] = (2, "u2", "cam", True, "day", ["deer"])          # and another
    images, annotations = make_pool(rows)
    deer = images[images["id"].isin([1, 2])]
    salt = next(s for s in map(str, range(100)) if not sampling.eval_side(deer, "image", s, 0.3).any())
    params = P.model_copy(update={"min_per_label": 7, "salt": salt})
    s = sample_pool(images, annotations, user_id="u0", label_names=LABELS[:1] + ["deer"], params=params,
                    user_verified=1)
    deer_in = [i for i in (1, 2) if i in set(s.base_train)]
    assert deer_in, "rare label images are drawn first"
    have = len(deer_in)
    assert any(f"label 'deer': {have} images in base_train, {7 - have} short of min_per_label=7" in w
               for w in s.warnings)
    assert all(s.repeats[i] == -(-7 // have) for i in deer_in)


def test_duplicate_image_id_and_orphan_annotation_are_named():
    images, annotations = make_pool(_basic())
    dup = pd.concat([images, images.iloc[[5]]], ignore_index=True)
    with pytest.raises(SamplingError, match="duplicate image id 5"):
        sample_pool(dup, annotations, user_id="u0", label_names=LABELS, params=P, user_verified=1)
    orphan = annotations.copy()
    orphan.loc[3, "image_id"] = 999
    with pytest.raises(SamplingError, match=r"annotation 3 refers to image 999"):
        sample_pool(images, orphan, user_id="u0", label_names=LABELS, params=P, user_verified=1)


def test_unmeetable_user_share_names_the_param():
    images, annotations = make_pool(_basic(users=2))
    with pytest.raises(SamplingError, match=r"sample.max_user_share=0.3 cannot be met.*at least 4"):
        sample_pool(images, annotations, user_id="u0", label_names=LABELS,
                    params=P.model_copy(update={"max_user_share": 0.3}), user_verified=1)


def test_missing_pool_folder_names_the_file(tmp_path):
    from camtune.core.dataset import DatasetError

    params = config.load(config.ROOT / "params.yaml", {"data.global_pool": str(tmp_path / "nope")})
    with pytest.raises(DatasetError, match="nope/annotations.json: file not found"):
        sampling.sample_from_params(params)


@pytest.mark.parametrize("split_unit", ["camera", "user"])
def test_public_source_is_exempt_from_the_user_cap_and_split_by_image(split_unit):
    """A home pool: one public pseudo-user with most images, one household with a few. The cap
    still binds the household; the public source fills the rest and is split image by image."""
    rows = [(i, "public.coco2017", "coco2017", True, None, ["person", "car"] if i % 3 else ["deer"])
            for i in range(300)]
    rows += [(1000 + i, "u1", f"cam{i % 2}", True, "day", ["person"]) for i in range(100)]
    images, annotations = make_pool(rows)
    params = SampleParams(split_unit=split_unit, eval_fraction=0.2, min_per_label=2, max_user_share=0.1)
    s = sample_pool(images, annotations, user_id="u0", label_names=LABELS, params=params,
                    user_verified=5, user_known=True)
    users = images.set_index("id").loc[s.base_train, "user_id"]
    n = len(s.base_train)
    public_train = images.loc[images["user_id"].str.startswith("public.")
                              & ~images["id"].isin(s.global_eval), "id"]
    assert set(public_train) <= set(s.base_train)             # every public training image taken
    assert (users == "u1").sum() == s.info["user_cap"] == int(0.1 * n)  # the household capped
    assert s.info["public_users"] == ["public.coco2017"]
    # per image: the public source is on both sides, in about the eval_fraction
    pub_eval = images.loc[images["id"].isin(s.global_eval), "user_id"].str.startswith("public.").sum()
    assert 0.1 * 300 < pub_eval < 0.3 * 300
    # the same pool without the prefix: one user holding most images is refused
    plain = images.assign(user_id=images["user_id"].str.replace("public.coco2017", "u9"))
    with pytest.raises(SamplingError, match="max_user_share=0.1 cannot be met"):
        sample_pool(plain, annotations, user_id="u0", label_names=LABELS,
                    params=params.model_copy(update={"split_unit": "image"}),
                    user_verified=5, user_known=True)


def test_public_prefix_is_reserved_for_pool_sources():
    with pytest.raises(config.ConfigError, match="reserved"):
        config.load(config.ROOT / "params.yaml", {"user.id": "public.coco2017"})
