"""Frigate's region geometry on the cases docs/ARCHITECTURE.md ("The Frigate contract") lists, and the detector/merge rules."""
import numpy as np
import pytest

from camtune.core import boxes
from camtune.model import regions as R

FRAME = (720, 1280)  # height, width


def test_min_region_size():
    assert R.min_region_size(320) == 320
    assert R.min_region_size(640) == 320   # larger models still get 320 regions (upscaled)
    assert R.min_region_size(128) == 128
    assert R.min_region_size(130) == 132   # rounded up to a multiple of 4


def test_small_box_in_the_middle_gets_the_minimum_centred():
    r = R.calculate_region(FRAME, (600, 300, 640, 400), 320)
    assert r == (460, 190, 780, 510)
    assert (r[0] + r[2]) / 2 == 620 and (r[1] + r[3]) / 2 == 350


def test_box_at_a_frame_corner_is_shifted_inside():
    r = R.calculate_region(FRAME, (1240, 680, 1280, 720), 320)   # bottom-right corner
    assert r == (960, 400, 1280, 720)
    r = R.calculate_region(FRAME, (0, 0, 30, 30), 320)           # top-left corner
    assert r == (0, 0, 320, 320)


def test_box_bigger_than_320_grows_the_region_rounded_down_to_4():
    box = (100, 100, 100 + 250, 100 + 301)   # long edge 301 -> 301 * 1.35 = 406.35 -> 404
    r = R.calculate_region(FRAME, box, 320)
    assert r[2] - r[0] == r[3] - r[1] == 404
    assert R.calculate_region(FRAME, box, 320, R.SNAPSHOT_MULTIPLIER)[2:] != r[2:]
    side = R.calculate_region(FRAME, box, 320, R.SNAPSHOT_MULTIPLIER)
    assert side[2] - side[0] == 600  # 301 * 2 = 602 -> 600


def test_frame_smaller_than_the_region_is_padded_black():
    img = np.full((200, 300, 3), 200, np.uint8)
    r = R.calculate_region(img.shape[:2], (250, 150, 290, 190), 320)
    assert r == (0, 0, 320, 320)
    crop = R.crop_region(img, r, 320)
    assert crop.shape == (320, 320, 3) and crop.dtype == np.uint8
    assert (crop[:200, :300] == 200).all()
    assert (crop[200:] == 0).all() and (crop[:, 300:] == 0).all()


def test_crop_resizes_with_opencv_bilinear():
    import cv2

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    r = R.calculate_region(FRAME, (400, 200, 800, 600), 320)   # 540 px region
    crop = R.crop_region(img, r, 320)
    want = cv2.resize(img[r[1]:r[3], r[0]:r[2]], (320, 320), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(crop, want)


def test_a_cluster_of_two_nearby_boxes_shares_one_region():
    boxes = [(500, 300, 540, 400), (560, 320, 600, 410)]
    clusters = R.cluster_boxes(FRAME, 320, boxes)
    assert clusters == [[0, 1]]
    (r,) = R.object_regions(FRAME, boxes, 320)
    assert all(r[0] <= b[0] and r[1] <= b[1] and r[2] >= b[2] and r[3] >= b[3] for b in boxes)


def test_far_apart_boxes_get_regions_of_their_own():
    boxes = [(20, 20, 60, 100), (1200, 600, 1240, 700)]
    assert R.cluster_boxes(FRAME, 320, boxes) == [[0], [1]]
    assert len(R.object_regions(FRAME, boxes, 320)) == 2


def test_tiny_box_not_merged_into_a_big_region():
    # a big person and a small box inside its reach: together the region would exceed 320 and the
    # small box would be < 5 % of it, so they stay apart
    boxes = [(300, 100, 560, 700), (600, 600, 608, 608)]
    assert R.cluster_boxes(FRAME, 320, boxes) == [[0], [1]]


def test_detector_output_floor_and_cap():
    n = 25
    scores = np.linspace(0.99, 0.5, n).astype(np.float32)
    boxes = np.tile([[0.1, 0.1, 0.5, 0.5]], (n, 1)).astype(np.float32)
    classes = np.zeros(n, np.float32)
    assert len(R.detector_output(boxes, classes, scores, n, ["person"])) == 20
    scores = np.array([0.9, 0.39, 0.8], np.float32)   # stops at the first score below 0.4
    out = R.detector_output(boxes[:3], classes[:3], scores, 3, ["person"])
    assert [s for _, s, _ in out] == [pytest.approx(0.9)]


def test_to_frame_maps_and_clamps():
    region = (960, 400, 1280, 720)
    d = R.to_frame("person", 0.9, (0.5, 0.5, 1.2, 1.0), region, FRAME)
    assert d.box == (1120, 560, 1279, 719)
    assert R.to_frame("person", 0.9, (0.0, 1.0, 0.1, 1.1), (1000, 0, 1320, 320), FRAME) is None


def test_clipped_only_at_region_edges_that_are_not_frame_edges():
    inner = (460, 190, 780, 510)
    assert R.is_clipped(R.Detection("person", .9, (462, 300, 500, 400), inner), FRAME)
    assert not R.is_clipped(R.Detection("person", .9, (500, 250, 600, 400), inner), FRAME)
    corner = (0, 0, 320, 320)   # left/top edges are the frame's
    assert not R.is_clipped(R.Detection("person", .9, (1, 1, 100, 100), corner), FRAME)
    assert R.is_clipped(R.Detection("person", .9, (100, 100, 318, 200), corner), FRAME)


def test_merge_prefers_the_unclipped_view():
    a = R.Detection("person", 0.95, (462, 300, 520, 420), (460, 190, 780, 510))   # clipped -> 0.6
    b = R.Detection("person", 0.7, (463, 301, 521, 421), (300, 190, 620, 510))    # unclipped
    assert R.merge([a, b], FRAME) == [b]


def test_merge_nms_per_label_and_score_threshold():
    region = (460, 190, 780, 510)
    p1 = R.Detection("person", 0.9, (500, 250, 600, 450), region)
    p2 = R.Detection("person", 0.8, (505, 255, 605, 455), region)    # same object, lower score
    dog = R.Detection("dog", 0.8, (505, 255, 605, 455), region)      # other label: kept
    weak = R.Detection("cat", 0.45, (650, 300, 700, 350), region)    # passes 0.4, not the merge's 0.5
    out = R.merge([p1, p2, dog, weak], FRAME)
    assert set(out) == {p1, dog}


def test_car_nms_iou_is_looser():
    region = (0, 0, 640, 640)
    frame = (640, 640)
    a = R.Detection("car", 0.9, (100, 100, 300, 200), region)
    b = R.Detection("car", 0.8, (150, 100, 350, 200), region)   # IoU 0.6 with a
    assert boxes.iou(a.box, b.box) == pytest.approx(0.6, abs=0.01)
    assert len(R.merge([a, b], frame)) == 2
    pa = R.Detection("person", 0.9, a.box, region)
    pb = R.Detection("person", 0.8, b.box, region)
    assert R.merge([pa, pb], frame) == [pa]


def test_consolidation_drops_a_box_inside_a_bigger_one():
    region = (0, 0, 640, 640)
    big = R.Detection("person", 0.7, (100, 100, 300, 500), region)
    inner = R.Detection("person", 0.9, (110, 110, 200, 250), region)   # IoU small, fully inside
    assert R.merge([big, inner], (640, 640)) == [big]


def test_detect_in_regions_runs_each_region_at_model_size():
    seen = []

    def run(batch):
        seen.append(batch.shape)
        return [(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), np.array([1], np.float32),
                 np.array([0.9], np.float32), 1)] * len(batch)

    img = np.zeros((720, 1280, 3), np.uint8)
    regs = [(0, 0, 320, 320), (640, 200, 1040, 600)]
    dets = R.detect_in_regions(img, regs, run, 320, ["person", "car"])
    assert seen == [(2, 320, 320, 3)]
    assert [d.label for d in dets] == ["car", "car"]
    assert dets[0].box == (80, 80, 240, 240) and dets[1].box == (740, 300, 940, 500)


def test_motion_regions_are_deterministic_squares_inside_the_frame():
    a = R.motion_regions(FRAME, 320, 60, 3, seed=5)
    assert a == R.motion_regions(FRAME, 320, 60, 3, seed=5)
    assert a and all(r[2] - r[0] == r[3] - r[1] >= 320 and r[0] >= 0 and r[1] >= 0
                     and r[2] <= 1280 and r[3] <= 720 for r in a)
