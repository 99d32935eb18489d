"""The report draws any box in bounded time (issue 28, item 6)."""
from __future__ import annotations

import threading

from PIL import Image

from camtune.steps.report import draw


def _draw_in_time(boxes, seconds=10.0):
    img = Image.new("RGB", (360, 200))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("img", draw.draw_boxes(img, boxes, ["car"], 0.5)),
                         daemon=True)
    t.start()
    t.join(seconds)
    return out.get("img")


def test_huge_and_non_finite_boxes_are_drawn_clipped_in_bounded_time():
    boxes = [draw.Box("car", (10.0, 10.0, 1e300, 1e300), style) for style in ("gt", "miss", "context", "suggest")]
    boxes += [draw.Box("car", (-1e12, 5.0, 2e12, 40.0), "gt"), draw.Box("car", (float("nan"), 0, 5, 5), "gt"),
              draw.Box("car", (0, 0, float("inf"), 5), "hit"), draw.Box("car", (1e308, 1e308, 1e308, 1e308), "bad")]
    img = _draw_in_time(boxes)
    assert img is not None, "drawing did not finish in 10 s"
    assert img.size == (360, 200) and img.getbbox() is not None   # the clipped boxes were drawn


def test_clipped_box_keeps_the_visible_part():
    assert draw._clipped((10, 20, 30, 40), 1.0, 100, 100) == (10, 20, 40, 60)
    assert draw._clipped((10, 20, 1e300, 40), 1.0, 100, 100) == (10, 20, 108, 60)
    assert draw._clipped((float("nan"), 0, 1, 1), 1.0, 100, 100) is None
