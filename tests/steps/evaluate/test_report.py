"""metrics.json, DVC plot files and the Markdown report from constructed results."""
from __future__ import annotations

import numpy as np

from camtune.core.config import GateParams, ThresholdParams
from camtune.metrics import bootstrap
from camtune.steps.evaluate import report
from camtune.steps.evaluate.gate import decide
from camtune.steps.evaluate.thresholds import frigate_yaml, recommend

CURVE = {"recall": [0.0, 0.01], "precision": [0.9, 0.5], "scores": [0.9, 0.6]}


def metrics(map_, map50, face_ap=None):
    return {"map": map_, "map50": map50, "images": 4, "boxes": 9,
            "per_class": {"person": {"ap": map_, "ap50": map50, "gt": 8},
                          "face": {"ap": face_ap, "ap50": face_ap, "gt": 0 if face_ap is None else 1}},
            "pr": {"person": CURVE},
            "slices": {"camera": {"front": {"map": map_, "map50": map50, "images": 4}}}}


RESULTS = {
    "base": {"user": metrics(0.3, 0.5), "global": metrics(0.4, 0.6)},
    "tuned": {"user": metrics(0.35, 0.55), "global": metrics(0.2, 0.3)},
    "baseline": {"user": metrics(0.32, 0.52), "global": metrics(0.41, 0.61)},
}


def gate_of(tuned: str, base: str, name: str) -> dict:
    """The gate on per-image figures equal to the tables' values on every image (so the
    intervals are the points: a clear verdict)."""
    def stats(r):
        n = 12   # >= evaluate.gate.min_images
        return {s: bootstrap.RatioOfSums(np.arange(n), {
            "map": (np.full(n, r[s]["map"]), np.ones(n)), "map50": (np.full(n, r[s]["map50"]), np.ones(n)),
            "ap[person]": (np.full(n, r[s]["per_class"]["person"]["ap"]), np.ones(n))}) for s in ("user", "global")}

    t, b = stats(RESULTS[tuned]), stats(RESULTS[base])
    gp = GateParams(resamples=100)
    evidence = {s: bootstrap.paired_draws({"tuned": t[s], "baseline": b[s]}, 100, 0, s) for s in t}
    return decide(RESULTS[tuned], RESULTS[base], gp, name, evidence)


def test_metrics_json_is_flat_per_model_and_set_and_keeps_the_verdict():
    gate = gate_of("tuned", "baseline", "registry:m1")
    m = report.metrics_json(RESULTS, gate)
    assert m["blessed"] is False and m["verdict"] == "not_blessed" and m["gate_baseline"] == "registry:m1"
    assert m["baseline"]["global"] == {"map": 0.41, "map50": 0.61, "images": 4, "boxes": 9}
    assert set(m) == {"blessed", "verdict", "gate_baseline", "base", "tuned", "baseline"}


def test_plot_files_have_one_column_per_model():
    files = report.plot_files(RESULTS)
    assert set(files) == {"pr_user_person.json", "pr_global_person.json"}
    assert files["pr_global_person.json"][1] == {"recall": 0.01, "base": 0.5, "tuned": 0.5, "baseline": 0.5}


def test_markdown_names_the_refusing_check_and_shows_null_ap_as_na():
    gate = gate_of("tuned", "base", "base")
    advice = recommend(["person", "face"], ["face"], [("user holdout", RESULTS["tuned"]["user"])],
                       ThresholdParams(min_boxes=1))
    md = report.markdown(RESULTS, gate, advice, user_id="u1", frigate_yaml=frigate_yaml(advice))
    assert "**Not blessed.**" in md and "`global_drop` **failed**" in md
    assert "![global_drop](gate_plots/global_drop.png)" in md
    assert "| face (attribute) | 0 | n/a |" in md
    assert "## Slices by camera (global eval)" in md and "```yaml\nobjects:" in md
    rows = report.per_class_rows(RESULTS, "global")
    assert rows[1]["label"] == "face" and rows[1]["tuned_ap"] is None


def test_forest_plots_one_png_per_gated_metric():
    gate = gate_of("tuned", "base", "base")
    pngs = report.forest_plots(gate)
    assert set(pngs) == {"user_gain.png", "global_drop.png", "class_drop.png", "class_loss.png", "user_floor.png", "global_floor.png"}
    assert all(p.startswith(b"\x89PNG") and len(p) > 1000 for p in pngs.values())
