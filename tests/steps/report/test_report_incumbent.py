"""The run report's comparison with the incumbent (the model the user runs now): per camera, both
models' Frigate-path recall and false detections with intervals, the worse camera marked, and the
verdict sentence saying the model is not promoted. The section comes from the real `compare` on
planted Frigate-path runs (tests/steps/evaluate/test_incumbent.py), put into the run's gate.json."""
from __future__ import annotations

import json

from camtune.steps.evaluate.incumbent import compare
from camtune.steps.evaluate.run import with_incumbent
from tests.steps.evaluate.test_incumbent import GATE, NAMES, ATTRS, _inc, _runs
from tests.steps.report.test_report import _check_page, _overrides, _render


def test_page_shows_the_incumbent_per_camera_and_a_worse_camera(prefect_server, run_dir):
    params, root = run_dir
    section = compare(_inc(), {"user": _runs({"porch": (60, 1.0), "garage": (15, 0.0)}, 1),
                               "global": _runs({"g": (30, 0.8)}, 3, 1000)},
                      {"user": _runs({"porch": (60, 0.6), "garage": (15, 1.0)}, 2),
                       "global": _runs({"g": (30, 0.8)}, 3, 1000)},
                      NAMES, ATTRS, {"person": 0.5}, GATE, 0.05)
    assert section["verdict"] == "worse" and section["worse_cameras"] == ["garage"]
    _render(overrides=_overrides(params))   # the run's own gate.json first: a first model
    assert "first model" in " ".join(_check_page(root).text)

    path = root / "artifacts/evaluate/gate.json"
    gate = json.loads(path.read_text())
    gate = with_incumbent({**gate, "verdict": "blessed", "blessed": True}, section)
    path.write_text(json.dumps(gate))
    out = _render(overrides=_overrides(params))
    page = _check_page(root)
    text = " ".join(" ".join(page.text).split())
    assert "Against the model you run now" in text and "file:stock.tflite" in text
    assert "camera garage (worse)" in text and "camera porch" in text
    assert "Not promoted" in text and "worse than the incumbent" in out["sentence"]
    assert out["sentence"].startswith("Blessed") and "NOT promoted" in out["sentence"]
    rows = [r for r in page.find("tr") if "check-fail" in (r.get("class") or "")]
    assert rows, "the worse camera's row is marked"
    # recall with its interval: the tuned model found none of garage's 15 people, the incumbent all
    assert "0% [0, 0]" in text and "100% [100, 100]" in text
