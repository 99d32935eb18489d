"""Paired bootstrap over evaluation images: how sure is a difference between two models?

A resample draws the set's N images with replacement (a row of `counts`: how many times each
image is in the resample). Both models are scored on the SAME resample (paired), so the spread of
`tuned - baseline` is the spread of the difference, not of two independent noises.

Any statistic that is a function of per-image contributions plugs in through `Statistics`:

    class Statistics(Protocol):
        image_ids: np.ndarray            # [N], the order `counts` columns follow
        def statistics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
            # counts [B, N] image multiplicities -> {name: [B] values}; NaN = not measurable
            # on that resample (e.g. no ground truth drawn). counts = ones((1, N)) is the set itself.

Two implementations:

- `CocoMatches`: COCO AP. pycocotools' own matching (`COCOeval.evaluateImg`) runs ONCE per model
  and set; each resample then re-runs only the accumulation, an exact equivalent of
  `COCOeval.accumulate` on the resampled image multiset (an image drawn twice counts twice, as if
  it were two images), vectorized over resamples. Statistics: `map`, `map50`, `ap[label]`,
  `ap50[label]` (area "all", 100 detections, as COCOeval's summary).
- `RatioOfSums`: any ratio of per-image tallies, e.g. the Frigate path's recall
  (hits / objects) or false-detection rate (false detections / regions): give each name a
  numerator and a denominator array over the images; the statistic of a resample is
  sum(counts * numerator) / sum(counts * denominator).

`paired_draws` draws one `counts` matrix per evaluation set (seeded) and evaluates every model's
statistics on it.
"""
from __future__ import annotations

import contextlib
import io
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import numpy as np

_EPS = np.spacing(1)  # as COCOeval.accumulate
_MAXDET = 100
_CHUNK_ELEMENTS = 100_000  # resamples x IoUs x detections per block: small enough to stay in cache


class Statistics(Protocol):
    image_ids: np.ndarray

    def statistics(self, counts: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass
class RatioOfSums:
    """Ratio-of-sums statistics over per-image tallies: {name: (numerator[N], denominator[N])}.
    A resample whose denominator sums to 0 gives NaN (not measurable)."""

    image_ids: np.ndarray
    ratios: Mapping[str, tuple[np.ndarray, np.ndarray]]

    def statistics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        counts = np.asarray(counts, dtype="float64")
        out = {}
        for name, (num, den) in self.ratios.items():
            n = counts @ np.asarray(num, dtype="float64")
            d = counts @ np.asarray(den, dtype="float64")
            with np.errstate(divide="ignore", invalid="ignore"):
                out[name] = np.where(d > 0, n / np.where(d > 0, d, 1), np.nan)
        return out


@dataclass
class _Category:
    """One category's detections of every image in accumulate's order, matched once."""

    name: str
    gt: np.ndarray                 # [N] non-ignored ground-truth boxes per image
    img: np.ndarray                # [D] image index of each detection, sorted like accumulate
    tp: np.ndarray                 # [T, D] bool
    fp: np.ndarray                 # [T, D] bool
    # for the exact path (see `_tied`): detections in concatenation order and their sort key
    score_c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    img_c: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    tp_c: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    fp_c: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    tied: bool = False


def _q(tp_inc: np.ndarray, fp_inc: np.ndarray, npig: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """COCOeval.accumulate's interpolated precision, averaged over the recall thresholds (the AP
    of one IoU threshold), vectorized. tp_inc, fp_inc: [B, T, D] integer increments in score order;
    npig: [B] (> 0). Returns [B, T].

    With integer weights a detection drawn c times is one point standing for c identical
    consecutive detections: within a run of true positives precision and recall both grow, within
    a run of false positives recall stays put and precision falls, so the run's last point
    dominates its inner points and the interpolated precision is the same (see the tests)."""
    B, T, D = tp_inc.shape
    R = len(rec_thrs)
    if D == 0:
        return np.zeros((B, T))
    tp = np.cumsum(tp_inc, axis=2, dtype="int64").astype("float64")
    fp = np.cumsum(fp_inc, axis=2, dtype="int64").astype("float64")
    rc = tp / npig[:, None, None]
    fp += tp
    fp += _EPS
    pr = np.divide(tp, fp, out=tp)   # = tp / (fp + tp + eps), in accumulate's order of operations
    # precision envelope: max over this and every later point (accumulate's backward loop)
    env = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1].reshape(B * T, D)
    # accumulate's searchsorted(rc, recThrs, 'left') = #points with rc < thr, counted per row:
    # j = #thresholds <= rc, so rc < thr_r  <=>  j <= r
    j = np.searchsorted(rec_thrs, rc.ravel(), side="right").reshape(B * T, D)
    j += (np.arange(B * T) * (R + 1))[:, None]
    hist = np.bincount(j.ravel(), minlength=B * T * (R + 1)).reshape(B * T, R + 1)
    inds = np.cumsum(hist[:, :R], axis=1)
    q = np.take_along_axis(env, np.minimum(inds, D - 1), axis=1)
    q[inds >= D] = 0.0                 # recall never reached: precision 0
    return q.mean(axis=1).reshape(B, T)


class CocoMatches:
    """COCO AP of one model on one set, re-accumulable on any resample of its images."""

    def __init__(self, image_ids, label_names: Sequence[str], categories: list[_Category],
                 iou_thrs: np.ndarray, rec_thrs: np.ndarray):
        self.image_ids = np.asarray(image_ids, dtype="int64")
        self.label_names = list(label_names)
        self.categories = categories
        self.iou_thrs = np.asarray(iou_thrs)
        self.rec_thrs = np.asarray(rec_thrs)

    @classmethod
    def from_coco(cls, gt, dt, label_names: Sequence[str] | None = None,
                  image_ids: Sequence[int] | None = None) -> "CocoMatches":
        """Match `dt` to `gt` with pycocotools (area 'all', 100 detections per image), once.
        Category id c is named label_names[c - 1] (camtune's mapping) or by the gt's categories."""
        from pycocotools.cocoeval import COCOeval

        ev = COCOeval(gt, dt, iouType="bbox")
        if image_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [_MAXDET]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
        return cls.from_evaluated(ev, label_names)

    @classmethod
    def from_evaluated(cls, ev, label_names: Sequence[str] | None = None) -> "CocoMatches":
        """From a COCOeval after evaluate(): area range 0 ("all", COCOeval's default) and the
        evaluated maxDet (COCOeval's default 100, what its mAP is reported at)."""
        p = ev.params
        if list(p.areaRng[0]) != [0, 1e10]:
            raise ValueError(f"COCOeval area range 0 is {p.areaRng[0]}, not 'all'")
        if p.maxDets[-1] != _MAXDET:
            raise ValueError(f"COCOeval maxDets {p.maxDets}: the bootstrap reproduces maxDet {_MAXDET}")
        img_ids = list(p.imgIds)
        N, T = len(img_ids), len(p.iouThrs)
        A0 = len(p.areaRng)
        if label_names is None:
            names = {c["id"]: c["name"] for c in ev.cocoGt.dataset["categories"]}
        else:
            names = {k + 1: n for k, n in enumerate(label_names)}
        cats = []
        for k, cat_id in enumerate(p.catIds):
            gt = np.zeros(N, dtype="int64")
            scores, imgs, tps, fps = [], [], [], []
            for i in range(N):
                e = ev.evalImgs[k * A0 * N + i]
                if e is None:
                    continue
                gt[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                s = np.asarray(e["dtScores"][:_MAXDET], dtype="float64")
                if len(s) == 0:
                    continue
                dtm, dtig = e["dtMatches"][:, :_MAXDET], e["dtIgnore"][:, :_MAXDET].astype(bool)
                scores.append(s)
                imgs.append(np.full(len(s), i))
                tps.append(np.logical_and(dtm, ~dtig))   # accumulate's own definitions
                fps.append(np.logical_and(np.logical_not(dtm), ~dtig))
            if scores:
                score_c, img_c = np.concatenate(scores), np.concatenate(imgs)
                tp_c, fp_c = np.concatenate(tps, axis=1), np.concatenate(fps, axis=1)
            else:
                score_c, img_c = np.zeros(0), np.zeros(0, dtype="int64")
                tp_c, fp_c = np.zeros((T, 0), bool), np.zeros((T, 0), bool)
            order = np.argsort(-score_c, kind="mergesort")
            cats.append(_Category(names.get(cat_id, str(cat_id)), gt, img_c[order], tp_c[:, order],
                                  fp_c[:, order], score_c, img_c, tp_c, fp_c, _tied(score_c, img_c)))
        return cls(img_ids, [c.name for c in cats], cats, np.asarray(p.iouThrs), np.asarray(p.recThrs))

    def ap(self, counts: np.ndarray) -> np.ndarray:
        """[B, K, T]: per resample, category and IoU threshold, COCOeval's precision averaged over
        the recall thresholds; NaN where the category has no ground truth in the resample (-1)."""
        counts = np.asarray(counts)
        B, K, T = len(counts), len(self.categories), len(self.iou_thrs)
        out = np.full((B, K, T), np.nan)
        for k, c in enumerate(self.categories):
            npig = counts @ c.gt
            ok = npig > 0
            if not ok.any():
                continue
            if c.tied:
                for b in np.flatnonzero(ok):
                    out[b, k] = self._q_exact(c, counts[b], npig[b])
                continue
            D = len(c.img)
            step = max(1, _CHUNK_ELEMENTS // max(1, T * max(D, len(self.rec_thrs))))
            rows = np.flatnonzero(ok)
            for s in range(0, len(rows), step):
                r = rows[s:s + step]
                w = counts[np.ix_(r, c.img)].astype("int32")[:, None, :]
                out[r, k] = _q(w * c.tp[None], w * c.fp[None], npig[r].astype("float64"), self.rec_thrs)
        return out

    def _q_exact(self, c: _Category, counts_row: np.ndarray, npig: float) -> np.ndarray:
        """Explicit path for a category where one image holds several detections with the very
        same score: there accumulate's order (image, copy, position) is not the weighted order, so
        expand the resample and sort it as accumulate would."""
        n = counts_row[c.img_c]
        idx = np.repeat(np.arange(len(c.img_c)), n)
        run = np.repeat(np.cumsum(n) - n, n)             # where each detection's run of copies starts
        copy = np.arange(len(idx)) - run                  # 0..n-1: which copy of its image
        order = np.lexsort((idx, copy, c.img_c[idx], -c.score_c[idx]))
        sel = idx[order]
        return _q(c.tp_c[None, :, sel].astype("int32"), c.fp_c[None, :, sel].astype("int32"),
                  np.array([float(npig)]), self.rec_thrs)[0]

    def statistics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        ap = self.ap(counts)                                # [B, K, T]
        with np.errstate(invalid="ignore"), _nan_ok():
            out = {"map": np.nanmean(ap.mean(axis=2), axis=1), "map50": np.nanmean(ap[:, :, 0], axis=1)}
        for k, name in enumerate(self.label_names):
            out[f"ap[{name}]"] = ap[:, k].mean(axis=1)
            out[f"ap50[{name}]"] = ap[:, k, 0]
        return out


@contextlib.contextmanager
def _nan_ok():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN row is NaN: intended
        yield


def _tied(scores: np.ndarray, imgs: np.ndarray) -> bool:
    """Does one image hold two detections of this category with the same score?"""
    if len(scores) < 2:
        return False
    pairs = np.stack([imgs.astype("float64"), scores], axis=1)
    return len(np.unique(pairs, axis=0)) < len(pairs)


def resample_counts(n: int, resamples: int, seed: int, key: str = "") -> np.ndarray:
    """[resamples, n] multiplicities of n images drawn n times with replacement; the same
    (seed, key) gives the same draws. `key` (the set's name) keeps sets' draws independent."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(key.encode())]))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)


def _statistics(stat: Statistics, counts: np.ndarray, workers: int) -> dict[str, np.ndarray]:
    """`stat.statistics(counts)`, the resamples split over `workers` threads (numpy's array
    operations release the GIL; the results are the same row for row)."""
    if workers <= 1 or len(counts) < 2 * workers:
        return stat.statistics(counts)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(stat.statistics, np.array_split(counts, workers)))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def default_workers() -> int:
    """Threads for the bootstrap: the CPUs this process may use, at most 4."""
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def paired_draws(models: Mapping[str, Statistics], resamples: int, seed: int, key: str = "",
                 workers: int = 1) -> dict:
    """Every model's statistics on the same `resamples` resamples of one set's images, plus the
    point values on the set itself: {"points": {model: {stat: float}}, "draws": {model: {stat:
    [B]}}, "images": N}. The models must list the same images in the same order. `workers`
    threads share the resamples (same draws, same result)."""
    models = dict(models)
    ids = [np.asarray(m.image_ids) for m in models.values()]
    if any(len(i) != len(ids[0]) or (i != ids[0]).any() for i in ids[1:]):
        raise ValueError("paired bootstrap: the models were evaluated on different images")
    n = len(ids[0])
    counts = resample_counts(n, resamples, seed, key)
    ones = np.ones((1, n), dtype=counts.dtype)
    return {"images": n,
            "points": {m: {k: float(v[0]) for k, v in s.statistics(ones).items()} for m, s in models.items()},
            "draws": {m: _statistics(s, counts, workers) for m, s in models.items()}}


def interval(draws: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Percentile interval of the measurable draws; None when fewer than half are measurable."""
    d = np.asarray(draws, dtype="float64")
    d = d[np.isfinite(d)]
    if len(d) == 0 or len(d) * 2 < len(draws):
        return None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [a, 1.0 - a])
    return float(lo), float(hi)
