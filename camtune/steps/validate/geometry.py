"""Attribute containment: a `face` must lie inside a `person`, a logo or plate inside a `car`.

An attribute box is fine when one box of an allowed parent label in its image covers all but
`tolerance` (a fraction) of its area. Never all pairs (one image with 10,000 persons and 10,000
faces would be 10^8 pairs): a parent covering a fraction `need` of the child overlaps it by at
least `need` of its width, so with the parents sorted by left edge in width classes [2^k, 2^k+1),
the only candidates of a class have their left edge in a window of width < 2^k+1 found by binary
search. Time O((N + K) log N), memory O(N + a fixed block of pairs), where K is the number of
parents whose x-range could cover each child at all (about the local density of parents).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from camtune.steps.validate.findings import Finding
from camtune.steps.validate.load import finite_boxes

PAIR_BLOCK = 1 << 18  # candidate pairs evaluated at once (bounds memory)


def contained_fraction(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Fraction of each child box [x, y, w, h] (rows) that lies inside the parent box of the same row."""
    ix = np.clip(np.minimum(child[:, 0] + child[:, 2], parent[:, 0] + parent[:, 2])
                 - np.maximum(child[:, 0], parent[:, 0]), 0, None)
    iy = np.clip(np.minimum(child[:, 1] + child[:, 3], parent[:, 1] + parent[:, 3])
                 - np.maximum(child[:, 1], parent[:, 1]), 0, None)
    area = child[:, 2] * child[:, 3]
    return np.divide(ix * iy, area, out=np.zeros_like(area), where=area > 0)


def best_cover(c_img: np.ndarray, c_box: np.ndarray, p_img: np.ndarray, p_box: np.ndarray,
               need: float, block: int = PAIR_BLOCK) -> np.ndarray:
    """For each child box, the largest fraction of it one parent box of the same image covers;
    exact when it reaches `need`, else some value below `need` (non-candidates are not scored)."""
    best = np.zeros(len(c_box))
    if not len(c_box) or not len(p_box):
        return best
    cls = np.floor(np.log2(p_box[:, 2])).astype(np.int64)
    for k in np.unique(cls):
        sel = np.flatnonzero(cls == k)
        span = np.ldexp(1.0, int(k) + 1)  # every parent of this class is narrower (inf past 1e308)
        # parents of the class ordered by (image, rank of left edge): an exact integer key
        x0 = p_box[sel, 0]
        xs = np.unique(x0)
        imgs, img_rank = np.unique(p_img[sel], return_inverse=True)
        key = img_rank.astype(np.int64) * (len(xs) + 1) + np.searchsorted(xs, x0)
        order = np.argsort(key, kind="stable")
        key, sel = key[order], sel[order]
        # a candidate's left edge lies in [cx + need*cw - span, cx + (1-need)*cw]
        cx, cw = c_box[:, 0], c_box[:, 2]
        r = np.searchsorted(imgs, c_img)
        has = (r < len(imgs)) & (imgs[np.minimum(r, len(imgs) - 1)] == c_img)
        base = r.astype(np.int64) * (len(xs) + 1)
        lo = np.searchsorted(key, base + np.searchsorted(xs, cx + need * cw - span, side="left"), side="left")
        hi = np.searchsorted(key, base + np.searchsorted(xs, cx + (1 - need) * cw, side="right"), side="left")
        count = np.where(has, np.maximum(hi - lo, 0), 0)
        kids = np.flatnonzero(count)
        if not len(kids):
            continue
        # evaluate the candidate pairs in blocks of about `block` pairs
        ends = np.cumsum(count[kids])
        start = 0
        while start < len(kids):
            done = ends[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, done + block, side="right")))
            part = kids[start:stop]
            n = count[part]
            child = np.repeat(part, n)
            offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
            parent = sel[np.repeat(lo[part], n) + offsets]
            frac = contained_fraction(c_box[child], p_box[parent])
            seg = np.maximum.reduceat(frac, np.cumsum(n) - n)
            best[part] = np.maximum(best[part], seg)
            start = stop
    return best


def check_containment(anns: pd.DataFrame, attribute_parents: dict[str, list[str]],
                      tolerance: float) -> list[Finding]:
    """ORPHAN_ATTRIBUTE for each attribute box no allowed parent of its image contains."""
    if not attribute_parents or anns.empty:
        return []
    need = 1.0 - tolerance
    # Only well-formed boxes: NaN/negative boxes already have their own findings.
    ok = finite_boxes(anns) & (anns["w"] > 0).to_numpy() & (anns["h"] > 0).to_numpy() \
        & anns["image_id"].notna().to_numpy()
    boxes = anns.loc[ok, ["id", "image_id", "label", "x", "y", "w", "h"]]
    children = boxes[boxes["label"].isin(list(attribute_parents))]
    if children.empty or need <= 0:
        return []
    img = pd.array(boxes["image_id"], dtype="Int64").to_numpy(dtype="int64")
    xywh = boxes[["x", "y", "w", "h"]].to_numpy(dtype="float64")
    labels = boxes["label"].to_numpy(dtype=object)
    best = pd.Series(0.0, index=children.index)
    for child_label, parent_labels in attribute_parents.items():
        c = labels == child_label
        if not c.any():
            continue
        p = np.isin(labels, list(parent_labels))
        best[boxes.index[c]] = best_cover(img[c], xywh[c], img[p], xywh[p], need)
    bad_mask = (best < need - 1e-9).to_numpy()
    bad = children[bad_mask]
    out = []
    for r in bad.itertuples(index=False):
        allowed = " or ".join(attribute_parents[r.label])
        out.append(Finding("error", "ORPHAN_ATTRIBUTE",
                           f"no {allowed} box of its image covers {need:.0%} of this {r.label} box "
                           f"(validate.containment_tolerance={tolerance:g})",
                           image_id=r.image_id, annotation_id=r.id))
    return out
