"""Attribute containment: a `face` must lie inside a `person`, a logo or plate inside a `car`.

Vectorised: every attribute box is paired with every allowed-parent box of the same image in
one pandas merge, the overlap is computed on whole columns, and an attribute box is fine when
at least one parent covers all but `tolerance` (a fraction) of its area.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from camtune.validation.findings import Finding
from camtune.validation.load import finite_boxes


def contained_fraction(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Fraction of each child box [x, y, w, h] (rows) that lies inside the parent box of the same row."""
    ix = np.clip(np.minimum(child[:, 0] + child[:, 2], parent[:, 0] + parent[:, 2])
                 - np.maximum(child[:, 0], parent[:, 0]), 0, None)
    iy = np.clip(np.minimum(child[:, 1] + child[:, 3], parent[:, 1] + parent[:, 3])
                 - np.maximum(child[:, 1], parent[:, 1]), 0, None)
    area = child[:, 2] * child[:, 3]
    return np.divide(ix * iy, area, out=np.zeros_like(area), where=area > 0)


def check_containment(anns: pd.DataFrame, attribute_parents: dict[str, list[str]],
                      tolerance: float) -> list[Finding]:
    """ORPHAN_ATTRIBUTE for each attribute box no allowed parent of its image contains."""
    if not attribute_parents or anns.empty:
        return []
    # Only well-formed boxes: NaN/negative boxes already have their own findings.
    ok = finite_boxes(anns) & (anns["w"] > 0).to_numpy() & (anns["h"] > 0).to_numpy() \
        & anns["image_id"].notna().to_numpy()
    boxes = anns.loc[ok, ["id", "image_id", "label", "x", "y", "w", "h"]]
    children = boxes[boxes["label"].isin(list(attribute_parents))]
    if children.empty:
        return []
    pairs = pd.DataFrame(
        [(c, p) for c, ps in attribute_parents.items() for p in ps], columns=["label", "parent_label"]
    )
    parents = boxes[boxes["label"].isin(pairs["parent_label"])].rename(
        columns={"id": "parent_id", "label": "parent_label", "x": "px", "y": "py", "w": "pw", "h": "ph"})
    cand = (children.reset_index(names="child_row")
            .merge(pairs, on="label")
            .merge(parents, on=["image_id", "parent_label"]))
    frac = contained_fraction(cand[["x", "y", "w", "h"]].to_numpy(float),
                              cand[["px", "py", "pw", "ph"]].to_numpy(float))
    best = pd.Series(frac, index=cand["child_row"]).groupby(level=0).max()
    best = best.reindex(children.index, fill_value=0.0)
    need = 1.0 - tolerance
    bad = children[(best < need - 1e-9).to_numpy()]
    out = []
    for r, covered in zip(bad.itertuples(index=False), best[(best < need - 1e-9)].to_numpy()):
        allowed = " or ".join(attribute_parents[r.label])
        if covered == 0:
            msg = f"{r.label} box lies inside no {allowed} box of its image"
        else:
            msg = (f"{r.label} box lies at most {covered:.0%} inside a {allowed} box "
                   f"(needs {need:.0%}, validate.containment_tolerance={tolerance:g})")
        out.append(Finding("error", "ORPHAN_ATTRIBUTE", msg, image_id=r.image_id, annotation_id=r.id))
    return out
