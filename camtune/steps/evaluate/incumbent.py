"""The tuned model against the incumbent, the model the user runs now (docs/incumbent.md).

Both are scored on the Frigate path (`frigate_path`: the same regions, the same scoring) and
compared with the gate's paired bootstrap over images (`bootstrap.paired_draws`), overall on the
user holdout and the global set and per camera of the user:

- labels are matched by name: only labels both models know are compared (ground truth and
  detections of the others are left out on both sides, and listed);
- holdout images in the incumbent's lineage (it trained on them) are left out, and counted;
- both sides at the tuned model's advised min_score (the filters published with it);
- the tuned side is the float checkpoint, the incumbent int8: the recall tolerance is reduced by
  the export's fidelity bound (`gate.incumbent_specs`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from camtune.core.config import GateParams
from camtune.metrics import bootstrap, frigate_path
from camtune.steps.evaluate import gate
from camtune.metrics.frigate_path import ImageRun

SET_TITLES = {"user": "the user holdout", "global": "the global set"}


def restrict(runs: Sequence[ImageRun], labels: Sequence[str], drop_ids=()) -> list[ImageRun]:
    """The runs with ground truth and detections of `labels` only, without the images `drop_ids`
    (the regions stay: they are what Frigate shows the detector, whatever is in them)."""
    keep, drop = set(labels), {int(i) for i in drop_ids}
    return [ImageRun(r.image_id, r.camera, r.frame_shape, [g for g in r.gt if g[0] in keep], r.regions,
                     [d for d in r.raw if d.label in keep])
            for r in runs if r.image_id not in drop]


def _side(draws: dict, points: dict, confidence: float) -> dict:
    """One model's recall and false detections per 100 regions with their own intervals."""
    def iv(name, scale=1.0):
        ci = bootstrap.interval(draws[name], confidence)
        return None if ci is None else [round(scale * ci[0], 4), round(scale * ci[1], 4)]

    rec, fr = points.get("recall"), points.get("false_rate")
    ok = lambda v: v is not None and v == v  # noqa: E731 (NaN: not measurable)
    return {"recall": round(rec, 4) if ok(rec) else None, "recall_interval": iv("recall"),
            "false_per_100_regions": round(100 * fr, 3) if ok(fr) else None,
            "false_interval": iv("false_rate", 100.0)}


def _judged(specs: list[gate.CheckSpec], tuned: list[dict], incumbent: list[dict], key: str, title: str,
            g: GateParams, info: dict) -> tuple[list[gate.Check], dict | None]:
    """The specs judged on the paired draws of these per-image tallies (both sides on the same
    resamples); uninformative checks when there is no image left."""
    if not tuned:
        return [gate.Check(s.name, s.metric, s.kind, round(s.threshold, 6), None, None, None, None,
                           "uninformative", f"{s.why}; no image of {title} is left to compare on")
                for s in specs], None
    ev = bootstrap.paired_draws({"tuned": gate.frigate_tallies(tuned), "baseline": gate.frigate_tallies(incumbent)},
                                g.resamples, g.seed, key=key, workers=bootstrap.default_workers())
    checks = [gate.judge(s, ev, g.confidence, {s.set: info}, g.resolve_effect, g.min_images) for s in specs]
    return checks, ev


def compare(incumbent, runs_tuned: Mapping[str, list], runs_incumbent: Mapping[str, list],
            label_names: Sequence[str], attribute_labels: Sequence[str], min_scores: Mapping[str, float],
            g: GateParams, fidelity_margin: float) -> dict:
    """gate.json's "incumbent" section: what was compared, the checks, per-camera figures, the verdict."""
    names = list(label_names)
    compared = incumbent.compared_labels(names)
    attrs = [a for a in attribute_labels if a in compared]
    holdout_ids = {r.image_id for r in runs_tuned["user"]}
    in_lineage = sorted(holdout_ids & set(incumbent.lineage_ids))
    section: dict = {
        "name": incumbent.name, "source": incumbent.source, "model": str(incumbent.tflite),
        "labels_compared": compared, "labels_left_out": incumbent.left_out(names),
        "holdout_images": len(holdout_ids), "holdout_in_lineage": len(in_lineage),
        "holdout_in_lineage_ids": in_lineage,
        "tuned_side": "float checkpoint (artifacts/finetune/model)",
        "incumbent_side": f"int8 TFLite as Frigate runs it ({incumbent.size}x{incumbent.size})",
        "fidelity_margin": fidelity_margin,
        "min_score": "the tuned model's advised min_score per label (filters.yml), for both",
        "sets": {}, "cameras": {},
    }
    overall: list[gate.Check] = []
    cameras: dict[str, list[gate.Check]] = {}
    for key in ("user", "global"):
        drop = in_lineage if key == "user" else ()
        rt, ri = restrict(runs_tuned[key], compared, drop), restrict(runs_incumbent[key], compared, drop)
        st = frigate_path.summarize(rt, compared, attrs, min_scores)
        si = frigate_path.summarize(ri, compared, attrs, min_scores)
        ev_key = f"incumbent_{key}"
        info = {"images": len(rt), "boxes": st["overall"]["objects"],
                "cameras": sorted({r.camera for r in rt}) if key == "user" else []}
        checks, ev = _judged(gate.incumbent_specs(g, fidelity_margin, ev_key, SET_TITLES[key]),
                             st["images"], si["images"], ev_key, SET_TITLES[key], g, info)
        overall += checks
        sides = ({m: _side(ev["draws"][s], ev["points"][s], g.confidence) for m, s in
                  (("tuned", "tuned"), ("incumbent", "baseline"))} if ev else {})
        section["sets"][key] = {"images": len(rt), "objects": st["overall"]["objects"],
                                "regions": st["overall"]["regions"], **sides}
        if key != "user":
            continue
        # per camera of the user: the same checks on that camera's images alone
        for cam in sorted({r.camera for r in rt}):
            t_imgs = [i for i in st["images"] if i["camera"] == cam]
            i_imgs = [i for i in si["images"] if i["camera"] == cam]
            cam_key = f"incumbent_camera[{cam}]"
            specs = gate.incumbent_specs(g, fidelity_margin, cam_key, f"camera {cam}",
                                         name=f"incumbent_camera[{cam}]")
            cinfo = {"images": len(t_imgs), "boxes": sum(i["objects"] for i in t_imgs), "cameras": [cam]}
            cchecks, cev = _judged(specs, t_imgs, i_imgs, cam_key, f"camera {cam}", g, cinfo)
            cameras[cam] = cchecks
            section["cameras"][cam] = {
                "images": len(t_imgs), "objects": cinfo["boxes"], "regions": sum(i["regions"] for i in t_imgs),
                **({m: _side(cev["draws"][s], cev["points"][s], g.confidence)
                    for m, s in (("tuned", "tuned"), ("incumbent", "baseline"))} if cev else {}),
                "checks": [c.as_dict() for c in cchecks],
                "worse": any(c.verdict == "failed" for c in cchecks)}
    section.update(gate.decide_incumbent(overall, cameras, g))
    return section


def no_incumbent(reason: str) -> dict:
    """gate.json's "incumbent" section when nothing is compared (a first model, source none, ...)."""
    return {"verdict": "none", "name": None, "summary": reason, "checks": [], "cameras": {},
            "worse_cameras": [], "failed": [], "inconclusive": [], "advice": []}


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def _iv(v, pct: bool) -> str:
    if not v:
        return "n/a"
    return f"[{100 * v[0]:.0f}%, {100 * v[1]:.0f}%]" if pct else f"[{v[0]:.1f}, {v[1]:.1f}]"


def _fmt(v, nd=1) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def camera_rows(section: dict) -> list[dict]:
    """One row per camera (and the two whole sets first): both models' recall and false
    detections per 100 regions with intervals, the differences' checks. For the reports."""
    rows = []
    groups = [(SET_TITLES[k].removeprefix("the "), v, [c for c in section.get("checks", [])
                                                       if c["metric"].startswith(f"incumbent_{k}.")])
              for k, v in section.get("sets", {}).items()]
    groups += [(f"camera {cam}", v, v.get("checks", [])) for cam, v in section.get("cameras", {}).items()]
    for title, v, checks in groups:
        by = {c["name"].rsplit("_", 1)[-1]: c for c in checks}
        t, i = v.get("tuned", {}), v.get("incumbent", {})
        rows.append({
            "where": title, "images": v.get("images"), "objects": v.get("objects"), "regions": v.get("regions"),
            "incumbent_recall": _pct(i.get("recall")), "incumbent_recall_ci": _iv(i.get("recall_interval"), True),
            "tuned_recall": _pct(t.get("recall")), "tuned_recall_ci": _iv(t.get("recall_interval"), True),
            "incumbent_false": _fmt(i.get("false_per_100_regions")),
            "incumbent_false_ci": _iv(i.get("false_interval"), False),
            "tuned_false": _fmt(t.get("false_per_100_regions")), "tuned_false_ci": _iv(t.get("false_interval"), False),
            "recall_verdict": by.get("recall", {}).get("verdict", "n/a"),
            "false_verdict": by.get("false", {}).get("verdict", "n/a"),
            "recall_diff_ci": _diff(by.get("recall")), "false_diff_ci": _diff(by.get("false"), scale=-100.0),
            "worse": v.get("worse", any(c.get("verdict") == "failed" for c in checks))})
    return rows


def _diff(c: dict | None, scale: float = 100.0) -> str:
    """A check's estimate and interval in display units: recall points, or false per 100 regions
    (false_free's drop x -100 = the increase in false detections per 100 regions)."""
    if not c or c.get("point") is None:
        return "n/a"
    # (+ 0.0: no "-0.0" for a false-free share that did not move)
    lo, hi = sorted(scale * v + 0.0 for v in c["interval"]) if c.get("interval") else (None, None)
    iv = f" [{lo:+.1f}, {hi:+.1f}]" if lo is not None else ""
    return f"{scale * c['point'] + 0.0:+.1f}{iv}"


def markdown(section: dict) -> list[str]:
    """evaluate's report.md section: what was compared, the verdict, the per-camera table."""
    lines = ["", "## Against the incumbent (the model you run now)", ""]
    if section.get("verdict", "none") == "none":
        return lines + [section.get("summary") or "No incumbent was compared.", ""]
    lo = section["labels_left_out"]
    lines += [f"Incumbent `{section['name']}`: {section['incumbent_side']}; tuned: {section['tuned_side']}, "
              f"its recall tolerance reduced by the int8 fidelity margin {section['fidelity_margin']} "
              f"(`export.max_frigate_recall_drop`). Both on the Frigate path at "
              f"{section['min_score']}.", "",
              f"**{section['verdict'].replace('_', ' ')}**: {section['summary']}", "",
              f"- labels compared (matched by name): {', '.join(section['labels_compared']) or 'none'}",
              f"- left out, the incumbent does not know them: {', '.join(lo['not_in_incumbent']) or 'none'}",
              f"- left out, not ours: {', '.join(lo['not_ours']) or 'none'}",
              f"- holdout images in the incumbent's lineage (it trained on them), left out of this "
              f"comparison: {section['holdout_in_lineage']} of {section['holdout_images']}"]
    if section.get("worse_cameras"):
        lines.append(f"- worse camera{'s' if len(section['worse_cameras']) > 1 else ''}: "
                     f"{', '.join(section['worse_cameras'])}")
    for a in section.get("advice", []):
        lines.append(f"- to resolve it: {a}")
    lines += ["", "Recall and false detections per 100 regions with their own intervals; the difference "
              "(tuned - incumbent: recall in points, false detections per 100 regions) with its paired "
              "interval and the check's verdict.", ""]
    lines += ["| where | images | objects | incumbent recall | tuned recall | recall diff | recall check | "
              "incumbent false/100 | tuned false/100 | false diff | false check |", "|" + "---|" * 11]
    for r in camera_rows(section):
        lines.append(
            f"| {r['where']}{' **(worse)**' if r['worse'] else ''} | {r['images']} | {r['objects']} | "
            f"{r['incumbent_recall']} {r['incumbent_recall_ci']} | {r['tuned_recall']} {r['tuned_recall_ci']} | "
            f"{r['recall_diff_ci']} | {r['recall_verdict']} | {r['incumbent_false']} {r['incumbent_false_ci']} | "
            f"{r['tuned_false']} {r['tuned_false_ci']} | {r['false_diff_ci']} | {r['false_verdict']} |")
    return lines + [""]
