"""Training examples cut like Frigate's regions: geometry, clipping, determinism, and records the
Model Garden decoder reads."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.core.config import RegionTrainingParams
from camtune.core.dataset import load_dataset
from camtune.training import region_examples as RE
from tests.support.training_data import LABELS, make_dataset

KW = dict(input_size=320, per_object=2, context_jitter=0.25, background_share=0.5, whole_frame_share=0.0,
          min_visible=0.4)


def test_object_regions_keep_the_object_at_region_scale():
    box = (600, 300, 640, 400)     # 40x100 person in a 1280x720 frame
    ex = RE.plan((720, 1280), [box], [1], [True], rng=np.random.default_rng(0), **KW)
    objs = [e for e in ex if e.kind == "object"]
    assert len(objs) == 2
    for e in objs:
        side = e.region[2] - e.region[0]
        assert side == e.region[3] - e.region[1] >= 320 and side % 4 == 0
        (b,) = e.boxes
        # a region of 320..~400 px: the 100 px person stays 80..100 px tall in the 320 input
        assert 75 <= b[3] - b[1] <= 100.5 and e.classes == [1]


def test_clip_drops_slivers_and_keeps_most_visible():
    region = (0, 0, 320, 320)
    boxes = [(300, 100, 340, 200),   # half inside -> kept, clipped at 320
             (310, 100, 350, 200),   # a quarter inside -> dropped
             (10, 10, 50, 50)]
    b, c = RE.clip_boxes(region, 160, boxes, [1, 2, 3], min_visible=0.4)
    assert c == [1, 3]
    assert b[0] == pytest.approx((150, 50, 160, 100))   # halved: 320 -> 160 px


def test_background_regions_on_negatives_and_determinism():
    kw = {**KW, "whole_frame_share": 1.0}
    a = RE.plan((720, 1280), [], [], [], rng=RE.seed_for(0, 7, 0), **kw)
    assert [e.kind for e in a] == ["background", "frame"] and a[0].boxes == []
    b = RE.plan((720, 1280), [], [], [], rng=RE.seed_for(0, 7, 0), **kw)
    assert a == b
    c = RE.plan((720, 1280), [], [], [], rng=RE.seed_for(0, 7, 1), **kw)
    assert c[0].region != a[0].region   # another repeat: another place


def test_region_records_decode_and_are_deterministic(tmp_path):
    import tensorflow as tf
    from official.vision.dataloaders import tf_example_decoder

    from camtune.training import records

    ds = load_dataset(make_dataset(tmp_path / "ds", 5, size=(400, 240), unverified=0, negatives=1))
    rp = RegionTrainingParams(per_object=1, background_share=0.5, whole_frame_share=0.0)
    kw = dict(label_names=LABELS, shards=1, regions=rp, input_size=128)
    rs = records.write_records([records.Part(ds)], tmp_path / "a", **kw)
    rs2 = records.write_records([records.Part(ds)], tmp_path / "b", **kw)
    assert open(rs.files[0], "rb").read() == open(rs2.files[0], "rb").read()
    assert rs.kinds["object"] >= 4 and rs.kinds["background"] >= 1 and rs.kinds["frame"] == 0
    assert rs.examples == sum(rs.kinds.values()) and rs.images == 5
    dec = tf_example_decoder.TfExampleDecoder()
    n = 0
    for raw in tf.data.TFRecordDataset(rs.files):
        d = dec.decode(raw)
        assert int(d["width"]) == int(d["height"]) == 128
        assert d["image"].shape[:2] == (128, 128)
        boxes = d["groundtruth_boxes"].numpy()
        assert ((boxes >= 0) & (boxes <= 1)).all()
        n += 1
    assert n == rs.examples
