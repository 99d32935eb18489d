"""The sample step: draw `base_train`, `global_eval` and `replay` from the global pool.

Everything here works on the tables of `camtune.core.dataset` (vectorised numpy/pandas, no per-image
Python loop), so a pool of a million images samples in seconds. Only verified images are drawn.

The split (which side of the pool an image is on)
    Each image has a split unit (`sample.split_unit`): the image id, its camera (`user_id/camera`)
    or its user. A unit is on the evaluation side when a salted hash of its key, read as a number
    in [0, 1), is below `eval_fraction`. Camera and user keys are hashed with BLAKE2b(salt, key)
    (once per unique unit: units are far fewer than images); image ids, which are as many as the
    images, with the SplitMix64 finalizer of (id XOR BLAKE2b(salt)), a bijective 64-bit mixer,
    so no per-image Python call is needed. The side of a unit depends on nothing but its key
    and the salt, hence:
      * appending images never moves an existing image across the split, and row order does
        not matter;
      * with `camera`/`user` units one camera/user never sits on both sides (near-duplicate
        frames of one camera would otherwise leak from training into evaluation);
      * raising `eval_fraction` only moves units into evaluation, never out.
    Public datasets (pseudo-users `public.<name>`, `camtune.steps.ingest_public.flow`) are independent photos
    with no camera: their unit is always the image, whatever `split_unit` says (as one "camera" or
    one "user" the whole source would land on a single side).
    `global_eval` is the evaluation side's verified images minus the requesting user's. It is not
    capped on purpose: any cap ("the first N by hash") would evict old images as the pool grows,
    and metrics of models trained months apart would no longer be comparable.

`base_train` (user-independent, by decision)
    Drawn from the verified images on the training side of the split, of *every* user,
    including the requesting user. Why include them: the base model is the shared starting point
    of every user's fine-tune (the registry keeps `base/<base_id>`), so its sample must not
    depend on who asks. `base_train.json` therefore holds `"user_id": null` and only the params
    that shape it, and is byte-identical for every user: changing `user.id` leaves `train_base`
    cached. The fine-tune sees the user's images anyway. The requesting user's images that fall
    on the evaluation side are in neither set (moving them into `base_train` would make the base
    sample depend on the user). One consequence for later steps: some of the user's images may be
    in `base_train`; `replay.json` lists them (`user_images_in_base_train`) so the fine-tune's
    user holdout can avoid them.

    Stratification, all deterministic given `seed` (a per-image priority that is a salted hash of
    the image id, so it too ignores row order):
      1. size: the largest n <= min(base_train_max_images, candidates) such that the users can
         fill n with none above floor(max_user_share * n) images (water-filling over the users).
         Public pseudo-users are exempt from the cap: the cap keeps one household's cameras from
         dominating the shared base, and a public source is not a household - for a user
         training at home it is most of the pool (by design);
      2. rare labels first: labels in ascending order of availability each get up to
         `min_per_label` images (images containing the label), within the user caps;
      3. the rest is filled balancing `condition` (day, night, ...; missing = "unknown"): the
         next image is always taken from the condition with the fewest images so far, as far as
         the pool has them (water-filling), within the user caps;
      4. a label still below `min_per_label` (the pool has too few) is, with `upsample_rare`,
         upsampled: its images get a repeat count ceil(min_per_label / have), recorded in the
         manifest as `repeats` (`{image_id: k}`, only k > 1) for the trainer to weight them.

`replay`
    A deterministic sample of `base_train` of size round(replay_ratio * the user's verified images
    in the user dataset), mixed into fine-tuning against forgetting. It excludes the requesting
    user's own images (the fine-tune has them already, and a replayed copy of a user-holdout image
    would leak the holdout into training) and is spread over labels (round-robin over each
    image's rarest label, negatives as their own stratum) so that every class is rehearsed.

Bad input
    * the pool has no images, or no verified ones -> error naming the pool's annotations file;
      a duplicate image id or an annotation of an unknown image -> error naming the id;
    * the requesting user appears neither in the pool nor in the user dataset -> error (unknown
      user id); known from the user dataset but absent from the pool -> warning (a new user);
    * a label of `labels.names` with no verified image on the training side while
      `min_per_label > 0` -> error (the base model would have a class it never saw);
      a label with fewer than `min_per_label` -> warning naming the label and the shortfall
      (and the repeat factor when upsampled). Labels outside `labels.names` are ignored;
    * `max_user_share` that the pool cannot satisfy (too few users) -> error naming the param;
      an empty `global_eval` -> error (evaluation needs a set; change salt/eval_fraction).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from camtune.core import atomic
from camtune.core.config import PUBLIC_USER_PREFIX, Params, SampleParams
from camtune.core.dataset import Dataset, file_sha256, load_dataset
from camtune.core.errors import StepFailed

SETS = ("base_train", "global_eval", "replay")
STRATA_DIMENSIONS = ("label", "user", "camera", "condition")
NEGATIVE = "(none)"          # label stratum of an image without boxes of a known label
UNKNOWN_CONDITION = "unknown"


class SamplingError(StepFailed):
    """The pool or the params cannot give the three sets; the message says why."""


# ---------------------------------------------------------------------------------------------
# hashing


def _blake64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on uint64 (bijective: distinct ids keep distinct hashes)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _unit_interval(h: np.ndarray) -> np.ndarray:
    """uint64 hash -> float64 in [0, 1), exact (top 53 bits)."""
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def hash_ids(ids: np.ndarray, salt: str) -> np.ndarray:
    """Salted uint64 hash of integer ids, vectorised."""
    key = np.uint64(_blake64(salt.encode("utf-8")))
    return _splitmix64(np.asarray(ids).astype(np.uint64) ^ key)


def hash_keys(keys, salt: str) -> np.ndarray:
    """Salted uint64 hash of string keys: BLAKE2b(salt NUL key), one call per key."""
    prefix = salt.encode("utf-8") + b"\0"
    digests = b"".join(
        hashlib.blake2b(prefix + str(k).encode("utf-8"), digest_size=8).digest() for k in keys
    )
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def codes_of(values: pd.Series, missing: str | None = None) -> tuple[np.ndarray, list[str]]:
    """(int code per row, unique values as str); missing values get the code of `missing`."""
    codes, uniques = pd.factorize(values)
    names = [str(u) for u in uniques]
    if (codes < 0).any():
        if missing is None:
            raise ValueError(f"column {values.name!r} has missing values")
        if missing in names:
            fill = names.index(missing)
        else:
            fill = len(names)
            names.append(missing)
        codes = np.where(codes < 0, fill, codes)
    return codes.astype(np.int64), names


def camera_codes(user_codes: np.ndarray, cam_codes: np.ndarray, user_names: list[str],
                 cam_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """One code per (user, camera): camera names repeat across users ("front_door"), so a
    camera's key is `user_id/camera`."""
    pair = user_codes * np.int64(len(cam_names)) + cam_codes
    codes, uniques = pd.factorize(pair)
    keys = [f"{user_names[u // len(cam_names)]}/{cam_names[u % len(cam_names)]}" for u in uniques]
    return codes.astype(np.int64), keys


def unit_side(split_unit: str, salt: str, eval_fraction: float, *, ids: np.ndarray,
              user_codes: np.ndarray, user_names: list[str], cam_codes: np.ndarray,
              cam_names: list[str]) -> np.ndarray:
    """Boolean per image: True where its split unit hashes into the evaluation side
    (images of public pseudo-users: always by image)."""
    if split_unit == "image":
        return _unit_interval(hash_ids(ids, salt)) < eval_fraction
    if split_unit == "user":
        side = (_unit_interval(hash_keys(user_names, salt)) < eval_fraction)[user_codes]
    elif split_unit == "camera":
        codes, keys = camera_codes(user_codes, cam_codes, user_names, cam_names)
        side = (_unit_interval(hash_keys(keys, salt)) < eval_fraction)[codes]
    else:
        raise ValueError(f"unknown split unit {split_unit!r}")
    public = public_users(user_names)[user_codes]
    if public.any():
        side = np.where(public, _unit_interval(hash_ids(ids, salt)) < eval_fraction, side)
    return side


def public_users(user_names: list[str]) -> np.ndarray:
    """Boolean per user code: a public dataset's pseudo-user (exempt from max_user_share)."""
    return np.array([str(u).startswith(PUBLIC_USER_PREFIX) for u in user_names], dtype=bool)


def eval_side(images: pd.DataFrame, split_unit: str, salt: str, eval_fraction: float) -> np.ndarray:
    """Boolean per row of an images table: True where its unit is on the evaluation side."""
    user_codes, user_names = codes_of(images["user_id"])
    cam_codes, cam_names = codes_of(images["camera"])
    return unit_side(split_unit, salt, eval_fraction, ids=images["id"].to_numpy(np.int64),
                     user_codes=user_codes, user_names=user_names, cam_codes=cam_codes,
                     cam_names=cam_names)


def priority(ids: np.ndarray, seed: int, purpose: str) -> np.ndarray:
    """A deterministic random order of images: a hash of the id, keyed by seed and purpose."""
    return hash_ids(ids, f"camtune-sample/{seed}/{purpose}")


def user_cap(max_user_share: float, n: int | np.ndarray):
    """Most images one user may hold in a set of n (round() guards 0.35*20 = 6.9999...)."""
    return np.floor(np.round(max_user_share * np.asarray(n, dtype=np.float64), 9)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# small vectorised helpers


def _rank_in_group(codes: np.ndarray) -> np.ndarray:
    """0,1,2,... within each group, in the current row order."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    lengths = np.diff(np.r_[starts, len(sc)])
    rank_sorted = np.arange(len(sc)) - np.repeat(starts, lengths)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def _balanced_take(cand: np.ndarray, k: int, *, strata: np.ndarray, level: np.ndarray,
                   users: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Take up to k of the candidate positions `cand` (given in priority order), water-filling
    over `strata`: the next image always comes from the stratum whose count, starting at
    `level`, is lowest, in priority order within a stratum, while no user exceeds its `room`.
    Stable sorts keep the priority order among ties, so no tie-break is left to chance."""
    if k <= 0 or len(cand) == 0:
        return cand[:0]
    s = strata[cand]
    fill = level[s] + _rank_in_group(s)
    order = cand[np.argsort(fill, kind="stable")]
    u = users[order]
    ok = _rank_in_group(u) < room[u]
    return order[ok][:k]


# ---------------------------------------------------------------------------------------------
# the core


@dataclass(frozen=True)
class Samples:
    base_train: np.ndarray            # sorted image ids
    repeats: dict[int, int]           # base_train image id -> repeat count (> 1 only)
    global_eval: np.ndarray
    replay: np.ndarray
    user_images_in_base_train: np.ndarray
    strata: pd.DataFrame
    warnings: list[str] = field(default_factory=list)       # all of them
    base_warnings: list[str] = field(default_factory=list)  # those about base_train
    info: dict = field(default_factory=dict)


def _check_pool(images: pd.DataFrame, annotations: pd.DataFrame, source: str) -> None:
    if len(images) == 0:
        raise SamplingError(f"{source}: the global pool has no images")
    dup = images["id"].duplicated()
    if dup.any():
        raise SamplingError(
            f"{source}: duplicate image id {int(images.loc[dup, 'id'].iloc[0])} "
            f"({int(dup.sum())} duplicates in all)")
    orphan = ~annotations["image_id"].isin(images["id"])
    if orphan.any():
        a = annotations.loc[orphan].iloc[0]
        raise SamplingError(
            f"{source}: annotation {a['id']} refers to image {a['image_id']}, which is not in the "
            f"pool ({int(orphan.sum())} such annotations)")
    if not images["verified"].any():
        raise SamplingError(f"{source}: the global pool has no verified images "
                            f"({len(images)} images, none verified)")


def sample_pool(images: pd.DataFrame, annotations: pd.DataFrame, *, user_id: str,
                label_names: list[str], params: SampleParams, user_verified: int,
                user_known: bool = True, source: str = "global pool") -> Samples:
    """Draw the three sets from the pool's tables (see the module docstring for the rules).

    user_verified: the requesting user's verified images in the user dataset (sizes replay);
    user_known: whether the user exists at all (e.g. has images in the user dataset);
    source: names the pool's file in messages."""
    _check_pool(images, annotations, source)
    warns: list[str] = []
    base_warns: list[str] = []   # the ones about base_train, recorded in its manifest

    pool = images[images["verified"].to_numpy(bool)]
    ids = pool["id"].to_numpy(np.int64)
    n = len(ids)
    user_codes, user_names = codes_of(pool["user_id"])
    raw_cam_codes, raw_cam_names = codes_of(pool["camera"])
    cam_codes, cam_names = camera_codes(user_codes, raw_cam_codes, user_names, raw_cam_names)
    cond_codes, cond_names = codes_of(pool["condition"], missing=UNKNOWN_CONDITION)
    n_users = len(user_names)

    if user_id not in user_names:
        if (images["user_id"] == user_id).any():
            warns.append(f"user {user_id!r} has no verified images in the global pool ({source})")
        elif user_known:
            warns.append(f"user {user_id!r} has no images in the global pool ({source})")
        else:
            raise SamplingError(f"unknown user id {user_id!r}: no images of this user in the "
                                f"global pool ({source}) nor in the user dataset")
        is_user = np.zeros(n, dtype=bool)
    else:
        is_user = user_codes == user_names.index(user_id)

    # labels per image, label-major (K x n) so one label's column is contiguous;
    # boxes of labels outside labels.names are ignored, as are boxes of unverified images
    K = len(label_names)
    label_index = {name: j for j, name in enumerate(label_names)}
    pos = pd.Index(ids).get_indexer(annotations["image_id"].to_numpy())
    lab_codes, lab_uniques = pd.factorize(annotations["label"])
    lab_map = np.array([label_index.get(str(u), -1) for u in lab_uniques] + [-1], dtype=np.int64)
    lab = lab_map[lab_codes]                      # code -1 (missing label) -> the trailing -1
    keep = (pos >= 0) & (lab >= 0)
    ann_pos, ann_lab = pos[keep], lab[keep]
    has = np.zeros((K, n), dtype=bool)
    has[ann_lab, ann_pos] = True
    unknown_labels = sorted(str(u) for u in lab_uniques if str(u) not in label_index)
    if unknown_labels:
        base_warns.append(f"labels not in labels.names are ignored: {', '.join(unknown_labels)}")

    # 1. the split
    evals = unit_side(params.split_unit, params.salt, params.eval_fraction, ids=ids,
                      user_codes=user_codes, user_names=user_names, cam_codes=raw_cam_codes,
                      cam_names=raw_cam_names)
    global_eval = np.sort(ids[evals & ~is_user])
    if len(global_eval) == 0:
        raise SamplingError(
            f"{source}: global_eval is empty ({params.split_unit} units hashed with salt "
            f"{params.salt!r}, eval_fraction={params.eval_fraction}); the pool has too few "
            f"{params.split_unit}s of other users: add data or change sample.salt/eval_fraction")

    # 2. base_train from the training side
    train = ~evals
    n_train = int(train.sum())
    if n_train == 0:
        raise SamplingError(f"{source}: every verified image is on the global_eval side; nothing "
                            f"is left for base_train (change sample.salt or eval_fraction)")
    train_has = has[:, train].sum(axis=1)
    missing = [j for j in range(K) if train_has[j] == 0]
    if missing and params.min_per_label > 0:
        pool_has = has.sum(axis=1)
        detail = "; ".join(
            f"{label_names[j]!r}: 0 of {params.min_per_label} ("
            + (f"{int(pool_has[j])} verified in the pool, all on the global_eval side)"
               if pool_has[j] else "none verified in the pool)")
            for j in missing)
        raise SamplingError(f"{source}: no verified training image for label(s) of labels.names "
                            f"(min_per_label={params.min_per_label}): {detail}")
    avail = np.bincount(user_codes[train], minlength=n_users)
    public = public_users(user_names)
    target = min(params.base_train_max_images, n_train)
    size = _feasible_size(avail[~public], target, params.max_user_share,
                          exempt=int(avail[public].sum()))
    if size == 0:
        raise SamplingError(
            f"sample.max_user_share={params.max_user_share} cannot be met: the training side of "
            f"the pool ({source}) has {int((avail > 0).sum())} user(s) with verified images; "
            f"it needs at least {math.ceil(1 / params.max_user_share)} (or a public dataset: "
            f"camtune ingest_public)")
    if size < target:
        base_warns.append(f"base_train holds {size} images, not {target}: max_user_share="
                          f"{params.max_user_share} limits the users with most images")
    cap = int(user_cap(params.max_user_share, size))

    # one priority order for the whole draw (a hash of id and seed: row order never matters)
    porder = np.lexsort((ids, priority(ids, params.seed, "base_train")))
    chosen = np.zeros(n, dtype=bool)
    used = np.zeros(n_users, dtype=np.int64)
    cond_level = np.zeros(len(cond_names), dtype=np.int64)

    def take(mask: np.ndarray, k: int) -> None:
        got = _balanced_take(porder[mask[porder]], k, strata=cond_codes, level=cond_level,
                             users=user_codes, room=np.where(public, n, cap - used))
        chosen[got] = True
        used[:] += np.bincount(user_codes[got], minlength=n_users)
        cond_level[:] += np.bincount(cond_codes[got], minlength=len(cond_names))

    if params.min_per_label > 0:
        for j in np.argsort(train_has, kind="stable"):      # rarest first
            need = params.min_per_label - int(has[j, chosen].sum())
            room_total = size - int(chosen.sum())
            if need > 0 and room_total > 0:
                take(train & has[j] & ~chosen, min(need, room_total))
    take(train & ~chosen, size - int(chosen.sum()))

    base_pos = np.flatnonzero(chosen)
    weight = np.ones(n, dtype=np.int64)
    have = has[:, chosen].sum(axis=1)
    for j in range(K):
        if 0 < have[j] < params.min_per_label:
            short = params.min_per_label - int(have[j])
            msg = (f"label {label_names[j]!r}: {int(have[j])} images in base_train, {short} short of "
                   f"min_per_label={params.min_per_label} ({int(train_has[j])} verified on the "
                   f"training side of the pool)")
            if params.upsample_rare:
                k = math.ceil(params.min_per_label / have[j])
                rows = chosen & has[j]
                weight[rows] = np.maximum(weight[rows], k)
                msg += f"; upsampled x{k}"
            base_warns.append(msg)
    up = np.flatnonzero(weight > 1)
    up = up[np.argsort(ids[up])]
    repeats = dict(zip(ids[up].tolist(), weight[up].tolist()))

    # 3. replay: from base_train, without the user's images, round-robin over each image's
    # rarest label (negatives are stratum K)
    replay_size = int(round(params.replay_ratio * user_verified))
    rmask = chosen & ~is_user
    if replay_size > int(rmask.sum()):
        warns.append(f"replay: {replay_size} requested, base_train has {int(rmask.sum())} images "
                     f"of other users; taking all")
    rpos = np.flatnonzero(rmask)
    sub = has[:, rpos]
    rarest = np.full(n, K, dtype=np.int64)
    rarest[rpos] = np.where(sub.any(axis=0),
                            np.argmin(np.where(sub, have[:, None], np.iinfo(np.int64).max), axis=0), K)
    rorder = np.lexsort((ids, priority(ids, params.seed, "replay")))
    replay_pos = _balanced_take(rorder[rmask[rorder]], replay_size, strata=rarest,
                                level=np.zeros(K + 1, np.int64), users=user_codes,
                                room=np.full(n_users, n, np.int64))
    base_ids = ids[base_pos]

    sets = {
        "base_train": base_pos,
        "global_eval": np.flatnonzero(evals & ~is_user),
        "replay": np.sort(replay_pos),
    }
    strata = _strata(sets, weight=weight, has=has, ann_pos=ann_pos, ann_lab=ann_lab,
                     label_names=label_names, user_codes=user_codes, user_names=list(user_names),
                     cam_codes=cam_codes, cam_names=cam_names, cond_codes=cond_codes,
                     cond_names=list(cond_names))
    info = {
        "pool_images": int(len(images)), "pool_verified": int(n),
        "eval_side_verified": int(evals.sum()), "train_side_verified": n_train,
        "user_cap": cap, "public_users": [u for u, p in zip(user_names, public) if p],
        "user_images_dropped_eval_side": int((evals & is_user).sum()),
    }
    return Samples(
        base_train=np.sort(base_ids), repeats=repeats, global_eval=global_eval,
        replay=np.sort(ids[replay_pos]), user_images_in_base_train=np.sort(ids[base_pos[is_user[base_pos]]]),
        strata=strata, warnings=warns + base_warns, base_warnings=base_warns, info=info)


def _feasible_size(avail: np.ndarray, target: int, share: float, exempt: int = 0) -> int:
    """Largest n <= target the users can fill with none above user_cap(share, n), plus
    `exempt` images of users without a cap (public datasets)."""
    if target <= 0:
        return 0
    a = np.sort(avail)
    prefix = np.r_[0, np.cumsum(a)]
    n = np.arange(1, target + 1, dtype=np.int64)
    c = user_cap(share, n)
    below = np.searchsorted(a, c, side="right")          # users with avail <= c give all they have
    fillable = prefix[below] + c * (len(a) - below) + exempt
    ok = np.flatnonzero(fillable >= n)
    return int(n[ok[-1]]) if len(ok) else 0


def _strata(sets: dict[str, np.ndarray], *, weight, has, ann_pos, ann_lab, label_names,
            user_codes, user_names, cam_codes, cam_names, cond_codes, cond_names) -> pd.DataFrame:
    """Long table, one row per (set, dimension, value): images, weighted_images (counting
    base_train repeats), boxes, and share (of the set's images; label rows of one set may sum
    above 1 since an image holds several labels). `pool_verified` is the reference."""
    K = len(label_names)
    n = len(weight)
    all_sets = [("pool_verified", np.arange(n)), *sets.items()]
    frames = []
    for name, pos in all_sets:
        w = weight[pos] if name == "base_train" else np.ones(len(pos), dtype=np.int64)
        member = np.zeros(n, dtype=bool)
        member[pos] = True
        in_set = member[ann_pos]
        sub = has[:, pos]
        neg = ~sub.any(axis=0)
        label_rows = pd.DataFrame({
            "value": [*label_names, NEGATIVE],
            "images": np.r_[np.count_nonzero(sub, axis=1), neg.sum()],
            "weighted_images": np.r_[sub.astype(np.int64) @ w, w[neg].sum()],
            "boxes": np.r_[np.bincount(ann_lab[in_set], minlength=K), 0],
        }).assign(dimension="label")
        parts = [label_rows]
        for dim, codes, names in (("user", user_codes, user_names), ("camera", cam_codes, cam_names),
                                  ("condition", cond_codes, cond_names)):
            c = codes[pos]
            imgs = np.bincount(c, minlength=len(names))
            wts = np.bincount(c, weights=w, minlength=len(names)).astype(np.int64)
            bx = np.bincount(codes[ann_pos[in_set]], minlength=len(names))
            nz = np.flatnonzero(imgs)
            parts.append(pd.DataFrame({
                "value": np.asarray(names, dtype=object)[nz], "images": imgs[nz],
                "weighted_images": wts[nz], "boxes": bx[nz]}).assign(dimension=dim))
        frame = pd.concat(parts, ignore_index=True).assign(set=name)
        frame["share"] = (frame["images"] / max(len(pos), 1)).round(6)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    set_order = {s: i for i, s in enumerate(["pool_verified", *SETS])}
    dim_order = {d: i for i, d in enumerate(STRATA_DIMENSIONS)}
    out = out.assign(_s=out["set"].map(set_order), _d=out["dimension"].map(dim_order))
    out = out.sort_values(["_s", "_d", "value"], kind="stable").drop(columns=["_s", "_d"])
    cols = ["set", "dimension", "value", "images", "weighted_images", "boxes", "share"]
    return out[cols].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# manifests and files


def manifests(samples: Samples, *, params: Params, pool_sha256: str,
              user_verified: int) -> dict[str, dict]:
    """The three manifest dicts. Each records only the params that shape it, so base_train is
    the same bytes for every user (see the module docstring)."""
    sp = params.sample
    source = params.data.global_pool
    split = {"split_unit": sp.split_unit, "eval_fraction": sp.eval_fraction, "salt": sp.salt}
    base_params = {**split, "seed": sp.seed, "base_train_max_images": sp.base_train_max_images,
                   "max_user_share": sp.max_user_share, "min_per_label": sp.min_per_label,
                   "upsample_rare": sp.upsample_rare, "labels": list(params.labels.names)}
    user_id = params.user.id
    base = {
        "name": "base_train", "source": source, "user_id": None,
        "image_ids": [int(i) for i in samples.base_train], "count": int(len(samples.base_train)),
        "repeats": {str(k): v for k, v in samples.repeats.items()},
        "weighted_count": int(len(samples.base_train) + sum(v - 1 for v in samples.repeats.values())),
        "params": base_params, "pool_annotations_sha256": pool_sha256, "warnings": list(samples.base_warnings),
    }
    ev = {
        "name": "global_eval", "source": source, "user_id": user_id,
        "image_ids": [int(i) for i in samples.global_eval], "count": int(len(samples.global_eval)),
        "params": {**split, "excluded_user": user_id}, "pool_annotations_sha256": pool_sha256,
    }
    replay = {
        "name": "replay", "source": source, "user_id": user_id,
        "image_ids": [int(i) for i in samples.replay], "count": int(len(samples.replay)),
        "params": {**base_params, "replay_ratio": sp.replay_ratio, "user_verified": int(user_verified),
                   "user_dataset": params.data.user_dataset},
        "user_images_in_base_train": [int(i) for i in samples.user_images_in_base_train],
        "pool_annotations_sha256": pool_sha256,
    }
    return {"base_train": base, "global_eval": ev, "replay": replay}


@dataclass(frozen=True)
class SampleResult:
    samples: Samples
    manifests: dict[str, dict]


def user_verified_count(user_ds: Dataset, user_id: str) -> tuple[int, bool]:
    """(verified images of the user in the user dataset, whether the user has any image there)."""
    mine = user_ds.images["user_id"].astype(str) == user_id
    return int((mine & user_ds.images["verified"]).sum()), bool(mine.any())


def sample_from_params(params: Params) -> SampleResult:
    """Load the pool and the user dataset named in params, draw the three sets."""
    pool = load_dataset(params.data.global_pool)
    user_ds = load_dataset(params.data.user_dataset)
    user_verified, user_known = user_verified_count(user_ds, params.user.id)
    samples = sample_pool(pool.images, pool.annotations, user_id=params.user.id,
                          label_names=list(params.labels.names), params=params.sample,
                          user_verified=user_verified, user_known=user_known,
                          source=str(pool.annotations_path))
    return SampleResult(samples, manifests(samples, params=params,
                                           pool_sha256=file_sha256(pool.annotations_path),
                                           user_verified=user_verified))


def write_outputs(out_dir: str | Path, result: SampleResult) -> Path:
    """Write the three manifests and strata.csv into out_dir, atomically (whole folder)."""
    with atomic.output_dir(out_dir) as tmp:
        for name, m in result.manifests.items():
            atomic.write_json(tmp / f"{name}.json", m)
        atomic.write_text(tmp / "strata.csv", result.samples.strata.to_csv(index=False, lineterminator="\n"))
    return Path(out_dir)
