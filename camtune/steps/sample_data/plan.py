"""The plan of the synthetic world: which cameras each user owns, and per image (a Shot) which
camera, when, under which condition, verified or not, and which object it shows first.

Everything is a pure function of `SampleDataParams`, the label set and the user ids; every purpose,
camera and image draws from its own numpy Generator (`seeded_rng`), so an image never depends on
how many others were planned or drawn before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from camtune.core.config import SampleDataParams

CONDITIONS = ("day", "dusk", "night", "snow")
# Per-camera condition cycle (rotated per camera): mostly day, every camera sees all four quickly.
_CONDITION_CYCLE = ("day", "night", "dusk", "day", "snow", "day", "night", "dusk")
CAMERA_NAMES = ("front_door", "driveway", "backyard", "side_gate", "garage", "porch")
_OTHER_USERS = ("u_alba", "u_bodhi", "u_cleo", "u_dev", "u_emre", "u_freya", "u_gus", "u_hana")
# Lead object of the n-th non-negative image of a group, so even a tiny dataset holds every label.
_LEADS = (("person", None), ("car", "amazon"), ("package", None), ("dog", None),
          ("car", "ups"), ("cat", None), ("deer", None), ("car", "fedex"))
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Camera:
    user_id: str
    name: str
    user_index: int  # < len(sample_data.users): a demo user; stable when global_users changes
    index: int


@dataclass(frozen=True)
class Shot:
    """One planned image: who, where, when, and what it should show."""
    id: int
    camera: Camera
    k: int  # index of the shot within its camera
    condition: str
    captured_at: datetime
    verified: bool
    verified_at: datetime | None
    negative: bool
    lead: tuple[str, str | None] | None  # (kind, logo) drawn first; None for a negative



def seeded_rng(seed: int, *keys: int) -> np.random.Generator:
    # One independent stream per purpose/camera/image: an image never depends on how many
    # others were drawn before it (so the user's pooled images are the same in both datasets).
    return np.random.default_rng(np.random.SeedSequence([seed % 2**64, *keys]))


def other_user_ids(n: int, exclude) -> list[str]:
    exclude = {exclude} if isinstance(exclude, str) else set(exclude)
    names = [u for u in _OTHER_USERS if u not in exclude]
    i = 0
    while len(names) < n:
        i += 1
        if (cand := f"u_{i:03d}") not in exclude:
            names.append(cand)
    return names[:n]


def cameras_of(sd: SampleDataParams, user_id: str, user_index: int) -> list[Camera]:
    order = seeded_rng(sd.seed, 1, user_index).permutation(len(CAMERA_NAMES))
    names = [CAMERA_NAMES[i] for i in order]
    names += [f"camera_{i}" for i in range(len(names), sd.cameras_per_user)]
    return [Camera(user_id, names[j], user_index, j) for j in range(sd.cameras_per_user)]


def _count(n: int, fraction: float) -> int:
    # at least one when the fraction asks for any, so tiny datasets still exercise the case
    return 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))


def _plan_group(sd: SampleDataParams, cams: list[Camera], n: int, group: int, first_id: int,
                names: set[str]) -> list[Shot]:
    """n shots spread round-robin over `cams`, ids in capture order from first_id."""
    drafts = []
    for i in range(n):
        cam = cams[i % len(cams)]
        k = i // len(cams)
        rng = seeded_rng(sd.seed, 2, cam.user_index, cam.index, k)
        cond = _CONDITION_CYCLE[(k + 3 * cam.index + cam.user_index) % len(_CONDITION_CYCLE)]
        day = int(rng.integers(0, 56)) if cond == "snow" else int(rng.integers(0, 330))
        hour = {"day": rng.uniform(9, 16), "dusk": rng.uniform(17, 19), "snow": rng.uniform(9, 15),
                "night": rng.uniform(21, 28)}[cond]
        t = _EPOCH + timedelta(days=day, seconds=int(hour * 3600) + int(rng.integers(0, 60)))
        drafts.append((t, cam.user_index, cam.index, k, cam, cond, float(rng.uniform(0.5, 72))))
    drafts.sort(key=lambda d: d[:4])

    pick = seeded_rng(sd.seed, 3, group)
    unverified = set(pick.permutation(n)[: _count(n, sd.unverified_fraction)].tolist())
    verified_idx = [i for i in range(n) if i not in unverified]
    negatives = set(pick.permutation(verified_idx)[: _count(len(verified_idx), sd.negative_fraction)]
                    .tolist()) if verified_idx else set()
    leads = [(kind, logo if logo in names else None) for kind, logo in _LEADS if kind in names]
    shots, n_lead = [], 0
    for i, (t, _, _, k, cam, cond, delay_h) in enumerate(drafts):
        verified = i not in unverified
        negative = i in negatives or not leads
        lead = None if negative else leads[n_lead % len(leads)]
        n_lead += lead is not None
        shots.append(Shot(first_id + i, cam, k, cond, t, verified,
                          t + timedelta(hours=delay_h) if verified else None, negative, lead))
    return shots


def plan(sd: SampleDataParams, users: list[str], names: list[str]) -> tuple[dict[str, list[Shot]], list[Shot]]:
    """({demo user: their shots}, the other households' shots). Demo user i's ids are
    i*user_images+1 .. (i+1)*user_images in capture order; the first user_images_in_pool of them are
    the ones already in the global pool. Nothing depends on who requests a model."""
    drawable = set(names)
    per_user = {uid: _plan_group(sd, cameras_of(sd, uid, i), sd.user_images, i, i * sd.user_images + 1, drawable)
                for i, uid in enumerate(users)}
    others = [c for ui, uid in enumerate(other_user_ids(sd.global_users, users), start=len(users))
              for c in cameras_of(sd, uid, ui)]
    n_others = sd.global_images - sd.user_images_in_pool * len(users)
    first = len(users) * sd.user_images + 1
    # group len(users): with one demo user this is group 1, as before demo users were a list
    other_shots = _plan_group(sd, others, n_others, len(users), first, drawable) if n_others else []
    return per_user, other_shots
