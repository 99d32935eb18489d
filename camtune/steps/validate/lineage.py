"""Is there enough new data to be worth a new model, and does it cover the user's cameras?

"New verified images" (docs/ARCHITECTURE.md "The registry"): verified images of the user that are not in the lineage of
the user's newest published model (`<registry>/users/<uid>/index.json`, newest last, and that
model's `lineage.json` `image_ids`). No published model means a first model: every verified
image counts.
"""
from __future__ import annotations

import pandas as pd

from camtune.core.config import ValidateParams
from camtune.steps.validate.findings import Finding


def previous_lineage(registry_params, user_id: str) -> dict | None:
    """The lineage.json of the user's newest published model, or None for a first model."""
    from camtune.contracts.registry import open_registry

    return open_registry(registry_params).latest_lineage(user_id)


def check_lineage(images: pd.DataFrame, user_id: str, v: ValidateParams, lineage: dict | None
                  ) -> tuple[list[Finding], dict]:
    """(findings, counts) for `user_id`'s images against `v` (params' `validate` section).
    TOO_FEW_NEW is an error; camera coverage problems are warnings."""
    mine = images[(images["user_id"] == user_id) & images["verified"] & images["id"].notna()]
    seen = set()
    if lineage is not None:
        seen = {int(i) for i in lineage.get("image_ids") or []}
    new_mask = ~mine["id"].isin(seen)
    counts = {
        "verified": int(len(mine)),
        "new_verified": int(new_mask.sum()),
        "in_previous_model": int((~new_mask).sum()),
        "previous_model": (lineage or {}).get("model_id"),
        "first_model": lineage is None,
    }
    out = []
    if counts["new_verified"] < v.min_new_verified:
        since = ("in the dataset (first model)" if lineage is None
                 else f"since model {counts['previous_model'] or '(newest published)'}")
        out.append(Finding("error", "TOO_FEW_NEW",
                           f"user {user_id} has {counts['new_verified']} new verified images {since}; "
                           f"validate.min_new_verified={v.min_new_verified}",
                           data={"new_verified": counts["new_verified"], "min_new_verified": v.min_new_verified,
                                 "previous_model": counts["previous_model"]}))
    per_camera = mine.groupby(mine["camera"].fillna("<none>"), sort=True).agg(
        n=("id", "size"), conditions=("condition", lambda s: sorted(set(s.dropna())))
    )
    counts["per_camera"] = {cam: int(r.n) for cam, r in per_camera.iterrows()}
    for cam, r in per_camera.iterrows():
        if r.n < v.warn_min_per_camera:
            out.append(Finding("warning", "FEW_PER_CAMERA",
                               f"camera {cam!r} has {r.n} verified images; at least "
                               f"{v.warn_min_per_camera} (validate.warn_min_per_camera) make a sturdier model",
                               data={"camera": str(cam), "verified": int(r.n), "minimum": v.warn_min_per_camera}))
        if len(r.conditions) <= 1:
            what = f"only condition {r.conditions[0]!r}" if r.conditions else "no condition recorded"
            out.append(Finding("warning", "SINGLE_CONDITION",
                               f"camera {cam!r} has {what}; add images from other times of day and weather",
                               data={"camera": str(cam), "conditions": [str(c) for c in r.conditions]}))
    return out, counts
