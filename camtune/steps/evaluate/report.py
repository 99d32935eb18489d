"""What evaluate hands on: `metrics.json` (DVC metrics), PR-curve files (DVC plots), the per-class
AP table and the Markdown report (verdict and why, checks, per-class AP, slices).

`results` everywhere is {model: {"user": metrics, "global": metrics}} with models "base", "tuned"
and, when the baseline came from the registry, "baseline"; metrics as `evaluate_detections` returns.
"""
from __future__ import annotations

import re

from camtune.contracts import artifacts
from camtune.steps.evaluate.thresholds import Advice

SETS = (("user", "user holdout"), ("global", "global eval"))
GATE_PLOTS = artifacts.GATE_PLOTS.name   # forest plots (PNG) beside report.md
VERDICT_WORDS = {
    "blessed": "**Blessed.** Better on your cameras and not worse elsewhere, at the gate's confidence.",
    "not_blessed": "**Not blessed.** Measurably worse somewhere; this model will not be published.",
    "inconclusive": "**Inconclusive.** The evaluation sets are too small to tell better from luck; "
                    "this model is not published unless `publish.allow_inconclusive` is set.",
}


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def metrics_json(results: dict, gate: dict, frigate: dict | None = None) -> dict:
    """Flat enough for `dvc metrics show`: <model>.<set>.{map,map50,images,boxes} + the verdict
    (`gate_baseline` names the model the gate compared against; `baseline` holds its figures when
    it came from the registry), and with the Frigate path <model>.<set>.frigate.{recall (advised
    min_score), recall_fixed (evaluate.frigate_path.report_min_score), false_per_100_regions,
    objects, regions} (tracked labels)."""
    out: dict = {"blessed": bool(gate["blessed"]), "verdict": gate["verdict"], "gate_baseline": gate["baseline"]}
    inc = gate.get("incumbent")
    if inc is not None:  # against the model the user runs now (docs/incumbent.md)
        out["promote"] = bool(gate.get("promote"))
        out["incumbent"] = {"verdict": inc.get("verdict"), "name": inc.get("name"),
                            **{f"{s}_{m}_recall": v.get(m, {}).get("recall")
                               for s, v in (inc.get("sets") or {}).items() for m in ("tuned", "incumbent")}}
    for model, sets in results.items():
        out[model] = {
            s: {"map": _r(m.get("map")), "map50": _r(m.get("map50")), "images": m.get("images"),
                "boxes": m.get("boxes")}
            for s, m in sets.items()
        }
        for s, f in (frigate or {}).get(model, {}).items():
            a, x = f["advised"]["overall"], f["fixed"]["overall"]
            out[model][s]["frigate"] = {
                "recall": a["recall"], "recall_fixed": x["recall"], "fixed_min_score": f["fixed"]["min_score"],
                "false_per_100_regions": a["false_per_100_regions"],
                "false_per_100_regions_fixed": x["false_per_100_regions"],
                "objects": a["objects"], "regions": a["regions"]}
    return out


def per_class_rows(results: dict, set_name: str = "global") -> list[dict]:
    """One row per label: AP (mAP@[.5:.95]) and AP@.5 of every model on one set, null when the
    label has no ground truth there."""
    labels = list(next(iter(results.values()))[set_name]["per_class"])
    rows = []
    for label in labels:
        row: dict = {"label": label, "boxes": results["tuned"][set_name]["per_class"][label]["gt"]}
        for model, sets in results.items():
            pc = sets[set_name]["per_class"][label]
            row[f"{model}_ap"] = _r(pc["ap"])
            row[f"{model}_ap50"] = _r(pc["ap50"])
        rows.append(row)
    return rows


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def plot_files(results: dict) -> dict[str, list[dict]]:
    """{file name: records} for DVC plots: per set and label, precision at IoU .5 against recall,
    one column per model (x: recall, y: the model names; see dvc.yaml `plots:`)."""
    files = {}
    for set_name, _ in SETS:
        labels = results["tuned"][set_name].get("pr", {})
        for label, curve in labels.items():
            records = []
            for i, r in enumerate(curve["recall"]):
                rec = {"recall": r}
                for model, sets in results.items():
                    other = sets[set_name].get("pr", {}).get(label)
                    rec[model] = round(other["precision"][i], 4) if other else 0.0
                records.append(rec)
            files[f"pr_{set_name}_{_safe(label)}.json"] = records
    return files


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _family(name: str) -> str:
    return name.split("[", 1)[0]


def forest_plots(gate: dict) -> dict[str, bytes]:
    """One PNG per gated metric (check family: user_gain, global_drop, class_drop, floors): each
    check's point estimate with its interval, the threshold as a dashed line, colored by verdict."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"passed": "tab:green", "failed": "tab:red", "inconclusive": "tab:orange",
              "uninformative": "tab:gray"}
    fams: dict[str, list[dict]] = {}
    for c in gate["checks"]:
        fams.setdefault(_family(c["name"]), []).append(c)
    out = {}
    for fam, cs in fams.items():
        fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.38 * len(cs)), dpi=100)
        for y, c in enumerate(reversed(cs)):
            col = colors.get(c["verdict"], "black")
            if c["interval"] is not None:
                ax.plot(c["interval"], [y, y], color=col, lw=2.5)
            if c["point"] is not None:
                ax.plot([c["point"]], [y], "o", color=col)
            ax.plot([c["threshold"]], [y], "|", color="black", ms=14)
        thr = {c["threshold"] for c in cs}
        if len(thr) == 1:
            ax.axvline(thr.pop(), color="black", ls="--", lw=1, label="threshold")
        if cs[0]["kind"] != "floor":
            ax.axvline(0, color="0.7", lw=0.8)
        ax.set_yticks(range(len(cs)), [f"{c['name']} ({c['verdict']})" for c in reversed(cs)], fontsize=8)
        xlabel = {"floor": "tuned value", "keep": "tuned - kept share x baseline"}.get(cs[0]["kind"],
                                                                                   "tuned - baseline")
        ax.set_xlabel(f"{xlabel}, {cs[0]['metric'].split('.', 1)[0]} set "
                      f"({gate.get('confidence', 0.9):.0%} paired-bootstrap interval, | = threshold)", fontsize=8)
        ax.set_title(fam, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        out[f"{_safe(fam)}.png"] = buf.getvalue()
    return out


def _interval(c: dict) -> str:
    if c.get("interval") is None:
        return "n/a"
    return f"[{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}]"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def frigate_section(frigate: dict, advice: list[Advice]) -> list[str]:
    """The Frigate-path figures: what the user's Frigate would detect with each model."""
    if not frigate:
        return []
    any_f = next(iter(frigate.values()))
    fixed = next(iter(any_f.values()))["fixed"]["min_score"]
    lines = ["", "## Frigate path", "",
             "What Frigate would detect with this model: square regions (at least 320 px, 1.35x the "
             "object or cluster) around every object of the set, and motion-like regions on images "
             "without objects; each resized to the model input, the detector's 0.4 floor, at most 20 "
             "per region, Frigate's cross-region merge; an object counts as found when a detection of "
             "its label overlaps it at IoU >= 0.5. Recall is over tracked labels (attributes below). "
             "The evaluate step runs the trained checkpoints (float); the export step checks the int8 "
             "model on the same path.", ""]
    rows = []
    for model, sets in frigate.items():
        for s, title in SETS:
            if s not in sets:
                continue
            a, x = sets[s]["advised"]["overall"], sets[s]["fixed"]["overall"]
            rows.append([model, title, a["objects"], a["regions"], _pct(a["recall"]), _pct(x["recall"]),
                         _fmt(a["false_per_100_regions"]), _fmt(x["false_per_100_regions"])])
    lines += _table(["model", "set", "objects", "regions", "recall (advised min_score)",
                     f"recall (min_score {fixed})", "false / 100 regions (advised)",
                     f"false / 100 regions ({fixed})"], rows)
    tuned = frigate.get("tuned", {})
    adv = {a.label: a for a in advice}
    for s, title in SETS:
        if s not in tuned:
            continue
        lines += ["", f"### Tuned model per label ({title}, Frigate path)", ""]
        rows = []
        pl = tuned[s]["advised"]["per_label"]
        hist = tuned[s]["advised"]["scores"]
        for label, t in pl.items():
            if not t["objects"] and not t["false"]:
                continue
            h = hist.get(label, {"true": [], "false": []})
            rows.append([label, f"{adv[label].min_score:.2f}" if label in adv else "n/a", t["objects"],
                         t["hits"], _pct(t["recall"]), t["false"], sum(h["true"]), sum(h["false"])])
        lines += _table(["label", "min_score", "objects", "found", "recall", "false",
                         "true dets >= 0.4", "false dets >= 0.4"], rows)
        lines += ["", f"Per camera ({title}):", ""]
        lines += _table(["camera", "images", "objects", "recall", "false / 100 regions"],
                        [[c, t["images"], t["objects"], _pct(t["recall"]), _fmt(t["false_per_100_regions"])]
                         for c, t in tuned[s]["advised"]["per_camera"].items()])
    return lines


def markdown(results: dict, gate: dict, advice: list[Advice], *, user_id: str, frigate_yaml: str,
             notes: list[str] = (), frigate: dict | None = None, incumbent: dict | None = None) -> str:
    verdict = gate["verdict"]
    lines = [f"# Evaluation of the tuned model for `{user_id}`", "",
             f"{VERDICT_WORDS[verdict]} Baseline: `{gate['baseline']}`. {gate['summary']}.", ""]
    inc = gate.get("incumbent") or {}
    if verdict == "blessed" and "promote" in gate:
        lines += [("**Promoted**: once published it becomes your current model. " if gate["promote"] else
                   "**Not promoted**: published, it is recorded in the registry but not made your current "
                   "model nor installed. ") + gate["promotion"], ""]
    elif inc.get("verdict") in ("worse", "inconclusive"):
        lines += [f"Against the incumbent `{inc.get('name')}`: {inc['verdict'].replace('_', ' ')}.", ""]
    by_name = {c["name"]: c for c in gate["checks"]}
    for name in gate.get("deciding", []):
        c = by_name[name]
        lines.append(f"- `{name}` **{c['verdict']}**: {c['why']}; estimate {_fmt(c['point'])}, "
                     f"{gate['confidence']:.0%} interval {_interval(c)}, threshold {_fmt(c['threshold'])}")
    for a in gate.get("advice", []):
        lines.append(f"- to resolve it: {a}")
    if gate.get("uninformative"):
        lines.append(f"- uninformative (cannot fail, or no ground truth; not counted as passed): "
                     f"{', '.join(f'`{n}`' for n in gate['uninformative'])}")
    lines += [*[f"- note: {n}" for n in notes], "", "## Gate checks", "",
              f"Paired bootstrap over images ({gate['resamples']} resamples, seed {gate['seed']}): "
              f"estimate = tuned - baseline (a floor: the tuned value) on the whole set, interval at "
              f"{gate['confidence']:.0%} confidence.", ""]
    lines += _table(["check", "metric", "estimate", "interval", "threshold", "verdict", "why"],
                    [[c["name"], c["metric"], _fmt(c["point"]), _interval(c), _fmt(c["threshold"]),
                      c["verdict"] if c["verdict"] != "failed" else "**failed**", c["why"]]
                     for c in gate["checks"]])
    fams = list(dict.fromkeys(_family(c["name"]) for c in gate["checks"]))
    lines += [""] + [f"![{f}]({GATE_PLOTS}/{_safe(f)}.png)" for f in fams]

    lines += ["", "## Overall", ""]
    rows = []
    for model, sets in results.items():
        for s, title in SETS:
            m = sets[s]
            rows.append([model, title, m["images"], m["boxes"], _fmt(m["map"]), _fmt(m["map50"])])
    lines += _table(["model", "set", "images", "boxes", "mAP@[.5:.95]", "mAP@.5"], rows)

    models = list(results)
    for s, title in SETS:
        lines += ["", f"## Per-class AP ({title})", "",
                  "AP is mAP@[.5:.95] of the class; n/a = no ground truth of that label in the set.", ""]
        rows = [[r["label"] + (" (attribute)" if any(a.label == r["label"] and a.attribute for a in advice)
                               else ""), r["boxes"], *[_fmt(r[f"{m}_ap"]) for m in models],
                 *[_fmt(r[f"{m}_ap50"]) for m in models]]
                for r in per_class_rows(results, s)]
        lines += _table(["label", "boxes", *[f"{m} AP" for m in models], *[f"{m} AP@.5" for m in models]],
                        rows)

    for s, title in SETS:
        for field, groups in results["tuned"][s].get("slices", {}).items():
            lines += ["", f"## Slices by {field} ({title})", ""]
            rows = []
            for value in groups:
                row = [value, groups[value]["images"]]
                for m in models:
                    g = results[m][s].get("slices", {}).get(field, {}).get(value, {})
                    row += [_fmt(g.get("map")), _fmt(g.get("map50"))]
                rows.append(row)
            lines += _table([field, "images", *[f"{m} {k}" for m in models for k in ("mAP", "mAP@.5")]],
                            rows)

    if incumbent is not None:
        from camtune.steps.evaluate.incumbent import markdown as incumbent_markdown

        lines += incumbent_markdown(incumbent)
    lines += frigate_section(frigate or {}, advice)
    source = ("measured on the Frigate path above" if frigate
              else "read off whole-frame COCO curves (the Frigate path was not evaluated)")
    lines += ["", "## Frigate thresholds", "",
              f"Filters for this model, {source}: put these in your Frigate config (`threshold` has no "
              f"effect on attribute labels, so they only get `min_score`). Each label's note says where "
              f"its figures come from.", "",
              "```yaml", frigate_yaml.rstrip("\n"), "```", ""]
    return "\n".join(lines)
