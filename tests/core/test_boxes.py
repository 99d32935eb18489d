"""camtune.core.boxes: the one box geometry (conversions, IoU) and the one greedy matcher."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camtune.core import boxes

coord = st.floats(min_value=-50, max_value=700, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=0, max_value=400, allow_nan=False, allow_infinity=False)
xywh = st.tuples(coord, coord, size, size)
xyxy = xywh.map(boxes.xywh_to_xyxy)


def test_conversions():
    assert boxes.xywh_to_xyxy((10, 20, 30, 40)) == (10, 20, 40, 60)
    assert boxes.xyxy_to_xywh((10, 20, 40, 60)) == (10, 20, 30, 40)


@given(st.tuples(*[st.integers(-1000, 1000)] * 2 + [st.integers(0, 1000)] * 2))
def test_conversions_round_trip_on_pixels(b):
    assert boxes.xyxy_to_xywh(boxes.xywh_to_xyxy(b)) == b


def test_iou_values():
    assert boxes.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert boxes.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert boxes.iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges do not overlap
    assert boxes.iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(4 / 100)
    assert boxes.iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0.0  # empty union


def test_iou_matrix_normalized_yxyx():
    # the TF detection API's (ymin, xmin, ymax, xmax) needs no conversion
    a = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]])
    b = np.array([[0, 0, 1, 1], [2, 2, 3, 3]])
    assert np.allclose(boxes.iou_matrix(a, b), [[1, 0], [0.25, 0]])


def test_iou_matrix_empty():
    assert boxes.iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)
    assert boxes.iou_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(xyxy, max_size=6), st.lists(xyxy, max_size=6))
def test_iou_matrix_is_the_pairwise_iou(a, b):
    m = boxes.iou_matrix(a, b)
    assert m.shape == (len(a), len(b))
    for i, ba in enumerate(a):
        for j, bb in enumerate(b):
            assert m[i, j] == boxes.iou(ba, bb)  # exactly: the same operations in the same order


@settings(max_examples=200, deadline=None)
@given(st.lists(xyxy, min_size=1, max_size=5), st.lists(xyxy, min_size=1, max_size=5))
def test_iou_is_symmetric_bounded_and_axis_free(a, b):
    m = boxes.iou_matrix(a, b)
    assert np.all((m >= 0) & (m <= 1))
    assert np.array_equal(m, boxes.iou_matrix(b, a).T)
    swap = lambda bs: [(y0, x0, y1, x1) for x0, y0, x1, y1 in bs]  # noqa: E731
    assert np.array_equal(m, boxes.iou_matrix(swap(a), swap(b)))


# ----------------------------------------------------------------------------- the matcher

def test_highest_score_first_takes_the_best_box():
    gt = [(0, 0, 10, 10), (20, 0, 30, 10)]
    dets = [(1, 0, 11, 10), (0, 0, 10, 10)]
    m = boxes.greedy_match(boxes.iou_matrix(dets, gt), [0.6, 0.9], 0.5)
    assert m == {1: 0}  # the 0.9 detection takes box 0; the 0.6 one finds it taken, box 1 is too far


def test_each_ground_truth_once_and_the_threshold_is_inclusive():
    ious = np.array([[0.5], [0.9]])
    assert boxes.greedy_match(ious, [0.9, 0.8], 0.5) == {0: 0}
    assert boxes.greedy_match(ious, [0.9, 0.8], 0.51) == {1: 0}
    assert boxes.greedy_match(np.zeros((2, 0)), [0.9, 0.8], 0.5) == {}
    assert boxes.greedy_match(np.zeros((0, 3)), [], 0.5) == {}


def test_labels_must_agree():
    ious = np.array([[0.9, 0.6]])
    assert boxes.greedy_match(ious, [0.9], 0.5, ["car"], ["person", "car"]) == {0: 1}
    assert boxes.greedy_match(ious, [0.9], 0.5, ["dog"], ["person", "car"]) == {}
    assert boxes.greedy_match(ious, [0.9], 0.5) == {0: 0}  # no labels: any box


def test_ties():
    # equal IoU: the later ground-truth box; equal scores: the caller's order
    assert boxes.greedy_match(np.array([[0.7, 0.7]]), [0.9], 0.5) == {0: 1}
    assert boxes.greedy_match(np.array([[0.7], [0.8]]), [0.5, 0.5], 0.5) == {0: 0}


def test_shape_is_checked():
    with pytest.raises(ValueError, match="detections, ground truth"):
        boxes.greedy_match(np.zeros((2, 2)), [0.5], 0.5)
    with pytest.raises(ValueError, match="detections, ground truth"):
        boxes.greedy_match(np.zeros(2), [0.5, 0.5], 0.5)


def _reference(ious, scores, thr, det_labels, gt_labels):
    # the loop both former matchers (the report's and the Frigate path's) ran
    taken, out = set(), {}
    for di in sorted(range(len(scores)), key=lambda i: -scores[i]):
        best, best_iou = None, thr
        for gi in range(len(gt_labels)):
            if gi in taken or gt_labels[gi] != det_labels[di]:
                continue
            if ious[di][gi] >= best_iou:
                best, best_iou = gi, ious[di][gi]
        if best is not None:
            taken.add(best)
            out[di] = best
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_matcher_is_the_greedy_loop(data):
    n_det, n_gt = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))
    grid = st.sampled_from([0.0, 0.3, 0.5, 0.5, 0.7, 0.7, 1.0])  # coarse values: many ties
    ious = np.array([[data.draw(grid) for _ in range(n_gt)] for _ in range(n_det)]).reshape(n_det, n_gt)
    scores = [data.draw(st.sampled_from([0.4, 0.6, 0.6, 0.9])) for _ in range(n_det)]
    labels = st.sampled_from(["car", "person"])
    det_labels = [data.draw(labels) for _ in range(n_det)]
    gt_labels = [data.draw(labels) for _ in range(n_gt)]
    thr = data.draw(st.sampled_from([0.3, 0.5, 0.7]))
    got = boxes.greedy_match(ious, scores, thr, det_labels, gt_labels)
    assert got == _reference(ious, scores, thr, det_labels, gt_labels)
    assert got == boxes.greedy_match(ious.tolist(), scores, thr, det_labels, gt_labels)  # nested lists too
    assert len(set(got.values())) == len(got)
