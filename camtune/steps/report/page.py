"""The run as one HTML page: `artifacts/report/index.html` + `img/` + `charts/`.

`build(params, out_dir)` reads whatever the other stages left (every input is optional: a failed
validation leaves only `artifacts/validate/`, a run without a registry has no previous model, an
Edge TPU compile may have been skipped) and renders the page with Jinja2. Same inputs -> same
bytes, except the one "generated at" line (from SOURCE_DATE_EPOCH when set).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from camtune.contracts import artifacts, provenance
from camtune.core import atomic
from camtune.contracts.artifacts import BASE_MODEL, EXPORT_DIR as EXPORT, GLOBAL_EVAL, HOLDOUT
from camtune.contracts.verdict import Verdict, check_outcome
from camtune.core.config import Params, model_params
from camtune.core.dataset import resolve_inside
from camtune.model.images import ImageRefused, Limits
from camtune.steps.report import charts, compare, draw

VALIDATE = artifacts.VALIDATION_REPORT
EVALUATE = artifacts.EVALUATE_DIR
DETECTIONS = artifacts.EVALUATION_DETECTIONS
SETS = {"user": ("your holdout images", HOLDOUT), "global": ("everybody else's cameras (global set)", GLOBAL_EVAL)}
ADVICE_SOURCE = {"user holdout": "user", "global eval": "global"}
# findings whose file must not be opened (outside the dataset, not an image, a decompression bomb)
UNSAFE_FILE_RULES = {"FILE_ABSOLUTE", "FILE_TRAVERSAL", "FILE_SYMLINK_OUT", "FILE_MISSING",
                     "FILE_UNDECODABLE", "FORMAT_NOT_ALLOWED", "PIXEL_BOMB", "FILE_TOO_LARGE"}


# --------------------------------------------------------------------------- reading inputs

def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it does not exist or cannot be read (the page says so)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class RawDataset:
    """annotations.json read leniently (a dataset that failed validation may not load as a
    `camtune.core.dataset.Dataset`): images and annotations by id, label names by category."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        data = read_json(self.root / "annotations.json")
        data = data if isinstance(data, dict) else {}
        self.ok = bool(data)
        cats = {c.get("id"): c.get("name") for c in data.get("categories", []) if isinstance(c, dict)}
        self.images = {i["id"]: i for i in data.get("images", []) if isinstance(i, dict) and "id" in i}
        self.anns = {a["id"]: a for a in data.get("annotations", []) if isinstance(a, dict) and "id" in a}
        self.by_image: dict[Any, list[dict]] = defaultdict(list)
        for a in self.anns.values():
            a = {**a, "label": cats.get(a.get("category_id"))}
            self.anns[a["id"]] = a
            self.by_image[a.get("image_id")].append(a)

    def gt(self, image_id, label_names) -> list[dict]:
        return [{"label": a["label"], "bbox": [float(v) for v in a["bbox"]], "id": a["id"]}
                for a in self.by_image.get(image_id, [])
                if a["label"] in label_names and _finite_box(a.get("bbox"))]

    def safe_path(self, image: dict) -> Path | None:
        """The image file when it is a regular file inside the dataset folder, else None."""
        name = image.get("file_name")
        if not isinstance(name, str) or not name:
            return None
        path, code, _ = resolve_inside(self.root, name)   # the one checked resolver
        if code or not path.is_file():
            return None
        return path


def _finite_box(b) -> bool:
    return (isinstance(b, (list, tuple)) and len(b) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in b))


# --------------------------------------------------------------------------- verdict

def verdict_of(gate: Verdict | None) -> str:
    """"blessed" | "not blessed" | "inconclusive" | "none" (no readable gate.json)."""
    return "none" if gate is None else gate.verdict.replace("_", " ")


def verdict_sentence(gate: Verdict | None, validation: dict | None) -> str:
    verdict = verdict_of(gate)
    if gate is None:
        if isinstance(validation, dict) and validation.get("passed") is False:
            n = (validation.get("counts", {}).get("findings") or {}).get("error", 0)
            return (f"No model: your dataset failed validation with {n} error"
                    f"{'s' if n != 1 else ''}, so nothing was trained. Fix the findings under “Your data” "
                    f"and run again.")
        return "No verdict yet: the evaluate stage has not run (run `dvc repro`)."
    baseline = gate.baseline or "base"
    against = ("the base model it was fine-tuned from" if baseline == "base" and gate.incumbent is not None
               else "the base model (you have no published model yet)" if baseline == "base"
               else f"your last published model ({str(baseline).removeprefix('registry:')})")
    checks = gate.checks
    if verdict == "blessed":
        passed = sum(check_outcome(c) == "passed" for c in checks)
        rest = len(checks) - passed
        # checks that cannot fail are no evidence: never counted as passed
        extra = (f"; the other {rest} could not fail on these sets (uninformative) and count for nothing"
                 if rest else "")
        promo = ""
        if gate.promote is False:  # worse than (or not told apart from) the model the user runs
            promo = (f" But it is NOT promoted: published, it is recorded without replacing the model you run "
                     f"now ({gate.promotion_reason}).")
        return (f"Blessed: the tuned model passed {passed} of the gate's {len(checks)} checks against "
                f"{against}{extra}, so it can be published.{promo}")
    if verdict == "inconclusive":
        unsure = [c.get("name") for c in gate.deciding]
        which = f" ({', '.join(map(str, unsure))})" if unsure else ""
        advice = gate.advice
        return (f"Inconclusive: the evaluation cannot tell whether the tuned model is better than {against}"
                f"{which}; the difference is within the measurement's uncertainty, so it will not be "
                f"published. " + (advice[0] if advice else "Add verified images and run again."))
    failed = list(gate.failed) or [c.get("name") for c in checks if check_outcome(c) == "failed"]
    return (f"Not blessed: the tuned model failed {len(failed)} of {len(checks)} checks against {against} "
            f"({', '.join(map(str, failed))}), so it will not be published.")


def _check_verdict(c: dict) -> str:
    """A check's outcome as the page shows it: pass, fail, inconclusive, uninformative."""
    return {"passed": "pass", "failed": "fail"}.get(check_outcome(c), check_outcome(c))


def _interval(c: dict) -> str | None:
    iv = c.get("interval")
    if isinstance(iv, (list, tuple)) and len(iv) == 2 and all(isinstance(v, (int, float)) for v in iv):
        return f"[{iv[0]:.3f}, {iv[1]:.3f}]"
    if isinstance(iv, dict):
        lo = next((iv[k] for k in ("low", "lo", "lower") if isinstance(iv.get(k), (int, float))), None)
        hi = next((iv[k] for k in ("high", "hi", "upper") if isinstance(iv.get(k), (int, float))), None)
        if lo is not None and hi is not None:
            level = iv.get("level") or iv.get("confidence")
            return f"[{lo:.3f}, {hi:.3f}]" + (f" ({level:.0%})" if isinstance(level, float) else "")
    return None


def _fmt(v, nd: int = 3) -> str:
    return "n/a" if not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _pct_iv(v: dict, key: str, scale: float = 100.0, unit: str = "%") -> str:
    x, iv = v.get(key), v.get(f"{key.split('_')[0]}_interval") if key == "recall" else v.get("false_interval")
    if not isinstance(x, (int, float)):
        return "n/a"
    x = x * scale if key == "recall" else x
    text = f"{x:.0f}{unit}" if key == "recall" else f"{x:.1f}"
    if isinstance(iv, list) and len(iv) == 2:
        lo, hi = (iv[0] * scale, iv[1] * scale) if key == "recall" else iv
        text += f" [{lo:.0f}, {hi:.0f}]" if key == "recall" else f" [{lo:.1f}, {hi:.1f}]"
    return text


def _diff_text(c: dict | None, scale: float) -> str:
    """A check's difference in display units (recall points; false detections per 100 regions:
    the drop of the false-free share x -100)."""
    if not isinstance(c, dict) or not isinstance(c.get("point"), (int, float)):
        return "n/a"
    text = f"{scale * c['point'] + 0.0:+.1f}"  # + 0.0: never "-0.0"
    iv = c.get("interval")
    if isinstance(iv, list) and len(iv) == 2:
        lo, hi = sorted(scale * v + 0.0 for v in iv)
        text += f" [{lo:+.1f}, {hi:+.1f}]"
    return text


def incumbent_view(gate: Verdict | None) -> dict | None:
    """gate.json's comparison with the incumbent (the model the user runs now; docs/incumbent.md):
    what was compared, the verdict and, per set and per camera of the user, both models' recall and
    false detections per 100 regions with intervals, and the paired checks."""
    inc = gate.incumbent if gate is not None else None
    if inc is None:
        return None
    titles = {"user": "your holdout", "global": "the global set"}
    groups = [(titles.get(k, k), v, [c for c in inc.get("checks") or [] if str(c.get("metric", "")).startswith(
        f"incumbent_{k}.")]) for k, v in (inc.get("sets") or {}).items()]
    groups += [(f"camera {cam}", v, v.get("checks") or []) for cam, v in (inc.get("cameras") or {}).items()]
    rows = []
    for where, v, checks in groups:
        by = {str(c.get("name", "")).rsplit("_", 1)[-1]: c for c in checks}
        t, i = v.get("tuned") or {}, v.get("incumbent") or {}
        rows.append({"where": where, "images": v.get("images"), "objects": v.get("objects"),
                     "incumbent_recall": _pct_iv(i, "recall"), "tuned_recall": _pct_iv(t, "recall"),
                     "recall_diff": _diff_text(by.get("recall"), 100.0),
                     "recall_verdict": _check_verdict(by["recall"]) if "recall" in by else "n/a",
                     "incumbent_false": _pct_iv(i, "false_per_100_regions"),
                     "tuned_false": _pct_iv(t, "false_per_100_regions"),
                     "false_diff": _diff_text(by.get("false"), -100.0),
                     "false_verdict": _check_verdict(by["false"]) if "false" in by else "n/a",
                     "worse": bool(v.get("worse")) or any(_check_verdict(c) == "fail" for c in checks)})
    left = inc.get("labels_left_out") or {}
    return {"name": inc.get("name"), "verdict": str(inc.get("verdict", "none")).replace("_", " "),
            "summary": inc.get("summary") or "", "promote": gate.promote, "promotion": gate.promotion_reason,
            "labels_compared": inc.get("labels_compared") or [], "not_in_incumbent": left.get("not_in_incumbent") or [],
            "not_ours": left.get("not_ours") or [], "holdout_images": inc.get("holdout_images"),
            "holdout_in_lineage": inc.get("holdout_in_lineage"), "worse_cameras": inc.get("worse_cameras") or [],
            "tuned_side": inc.get("tuned_side"), "incumbent_side": inc.get("incumbent_side"),
            "fidelity_margin": inc.get("fidelity_margin"), "rows": rows}


def check_rows(gate: Verdict | None) -> list[dict]:
    rows = []
    for c in gate.checks if gate is not None else ():
        # the gate with intervals reports `point` (a gain/drop or the tuned value), the older one `observed`
        observed = c.get("observed", c.get("point"))
        rows.append({"name": c.get("name"), "metric": c.get("metric"), "why": c.get("why", ""),
                     "threshold": _fmt(c.get("threshold")), "observed": _fmt(observed),
                     "tuned": _fmt(c.get("tuned")), "baseline": _fmt(c.get("baseline")),
                     "interval": _interval(c), "verdict": _check_verdict(c)})
    return rows


# --------------------------------------------------------------------------- your cameras

def _detections(path: Path, label_names) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = defaultdict(list)
    for d in read_json(path) or []:
        k = int(d["category_id"]) - 1
        if 0 <= k < len(label_names):
            out[d["image_id"]].append({"label": label_names[k], "bbox": d["bbox"], "score": float(d["score"])})
    return out


def _panel(ds: RawDataset, path: Path, gt, outcome: compare.Outcome, names, width: int, limits=None):
    img, scale = draw.open_scaled(path, width, limits)
    found = set(outcome.matched.values())
    boxes = [draw.Box(g["label"], tuple(g["bbox"]), "gt" if i in found else "miss") for i, g in enumerate(gt)]
    for di, d in enumerate(outcome.detections):
        hit = di in outcome.matched
        text = f"{d['label']} {d['score']:.2f}" if hit else f"FALSE {d['label']} {d['score']:.2f}"
        boxes.append(draw.Box(d["label"], tuple(d["bbox"]), "hit" if hit else "false", text))
    return draw.draw_boxes(img, boxes, names, scale)


def camera_strips(params: Params, out: Path, min_score: dict[str, float]) -> list[dict]:
    """Per set: groups (a camera of the user, or one group for the global set) of composites."""
    rp = params.report
    names = list(params.labels.names)
    sections = []
    for key, (title, manifest_path) in SETS.items():
        manifest = read_json(manifest_path)
        base_p, tuned_p = DETECTIONS / f"base_{key}.json", DETECTIONS / f"tuned_{key}.json"
        if not isinstance(manifest, dict) or not base_p.is_file() or not tuned_p.is_file():
            sections.append({"key": key, "title": title, "groups": [],
                             "missing": f"no per-image detections ({base_p}); run `dvc repro evaluate`"})
            continue
        ds = RawDataset(manifest["source"])
        base, tuned = _detections(base_p, names), _detections(tuned_p, names)
        rows = []
        for iid in manifest.get("image_ids", []):
            im = ds.images.get(iid)
            if im is None or not im.get("verified"):
                continue  # evaluate leaves unverified images out: they are not ground truth
            gt = ds.gt(iid, names)
            ob = compare.match(gt, base.get(iid, []), min_score, rp.match_iou)
            ot = compare.match(gt, tuned.get(iid, []), min_score, rp.match_iou)
            rows.append({"image_id": iid, "image": im, "gt": gt, "base": ob, "tuned": ot,
                         "diff": compare.difference(ob, ot), "errors": ob.errors + ot.errors})
        if key == "user":
            by_cam = defaultdict(list)
            for r in rows:
                by_cam[str(r["image"].get("camera"))].append(r)
            groups = [(cam, compare.pick(by_cam[cam], rp.images_per_camera)) for cam in sorted(by_cam)]
        else:
            groups = [("sample of the global set", compare.pick(rows, rp.global_images))]
        out_groups = []
        for name, picked in groups:
            figs = []
            for r in picked:
                path = ds.safe_path(r["image"])
                if path is None:
                    continue
                try:
                    pb = _panel(ds, path, r["gt"], r["base"], names, rp.panel_width, Limits.of(params.validate))
                    pt = _panel(ds, path, r["gt"], r["tuned"], names, rp.panel_width, Limits.of(params.validate))
                except ImageRefused:  # over the limits or unreadable: validate names it; not drawn
                    continue
                comp = draw.side_by_side([("base: " + compare.describe(r["base"], len(r["gt"])), pb),
                                          ("tuned: " + compare.describe(r["tuned"], len(r["gt"])), pt)])
                rel = f"img/{key}_{r['image_id']}.jpg"
                atomic.write_bytes(out / rel, draw.jpeg_bytes(comp, rp.jpeg_quality))
                im = r["image"]
                gt_count = Counter(g["label"] for g in r["gt"])
                gt_text = ", ".join(f"{n} {l}" for l, n in sorted(gt_count.items())) or "no objects"
                alt = (f"Image {r['image_id']} from camera {im.get('camera')} ({im.get('condition') or 'condition unknown'}), "
                       f"ground truth: {gt_text}. Left, base model: {compare.describe(r['base'], len(r['gt']))}. "
                       f"Right, tuned model: {compare.describe(r['tuned'], len(r['gt']))}.")
                figs.append({"src": rel, "alt": alt, "image_id": r["image_id"], "camera": im.get("camera"),
                             "condition": im.get("condition"), "file": im.get("file_name"),
                             "width": comp.width, "height": comp.height,
                             "base": compare.describe(r["base"], len(r["gt"])),
                             "tuned": compare.describe(r["tuned"], len(r["gt"])), "diff": r["diff"]})
            out_groups.append({"name": name, "figures": figs, "images": len(by_cam[name]) if key == "user" else len(rows)})
        sections.append({"key": key, "title": title, "groups": out_groups, "missing": None})
    return sections


# --------------------------------------------------------------------------- per label

def label_tables(details: dict | None, label_names) -> list[dict]:
    results = (details or {}).get("results") or {}
    models = [m for m in ("base", "baseline", "tuned") if m in results]
    tables = []
    for key, (title, _) in SETS.items():
        if "tuned" not in results or key not in results["tuned"]:
            continue
        rows = []
        for label in label_names:
            cells = {m: ((results[m].get(key) or {}).get("per_class") or {}).get(label, {}) for m in models}
            b, t = cells.get("base", {}).get("ap"), cells.get("tuned", {}).get("ap")
            change = None if b is None or t is None else t - b
            rows.append({"label": label, "boxes": cells["tuned"].get("gt", 0),
                         "aps": [_fmt(cells[m].get("ap")) for m in models],
                         "change": None if change is None else f"{change:+.3f}",
                         "trend": None if change is None else ("up" if change > 0.005 else
                                                               "down" if change < -0.005 else "flat")})
        overall = [{"model": m, "map": _fmt((results[m].get(key) or {}).get("map")),
                    "map50": _fmt((results[m].get(key) or {}).get("map50"))} for m in models]
        tables.append({"key": key, "title": title, "models": models, "rows": rows, "overall": overall})
    return tables


def pr_charts(details: dict | None, label_names, out: Path) -> list[dict]:
    results = (details or {}).get("results") or {}
    advice = {a["label"]: a for a in (details or {}).get("advice") or [] if isinstance(a, dict)}
    figs = []
    for label in label_names:
        a = advice.get(label, {})
        order = [ADVICE_SOURCE.get(a.get("source"))] + list(SETS)
        key = next((k for k in order if k and ((results.get("tuned") or {}).get(k) or {}).get("pr", {}).get(label)),
                   None)
        if key is None:
            figs.append({"label": label, "src": None, "note": "no ground truth of this label in either set"})
            continue
        curves = {m: results[m][key]["pr"][label] for m in ("base", "tuned")
                  if ((results.get(m) or {}).get(key) or {}).get("pr", {}).get(label)}
        marks = {k: a[k] for k in ("min_score", "threshold") if isinstance(a.get(k), (int, float))}
        rel = f"charts/pr_{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.png"
        atomic.write_bytes(out / rel, charts.pr_chart(label, SETS[key][0], curves, marks))
        advised = ", ".join(f"{k} {v:.2f}" for k, v in marks.items())
        src_note = a.get("source", "n/a")
        alt = (f"Precision/recall curve of {label} on {SETS[key][0]}: base (dashed) and tuned (solid)"
               + (f"; advised {advised} marked on the tuned curve" if advised else "") + ".")
        figs.append({"label": label, "src": rel, "alt": alt,
                     "note": f"advice from {src_note}: {a.get('note', '')}" if a else ""})
    return figs


# --------------------------------------------------------------------------- your data

def finding_cards(validation: dict | None, ds: RawDataset, params: Params, out: Path) -> list[dict]:
    findings = [f for f in (validation or {}).get("findings") or [] if isinstance(f, dict)]
    unsafe = {f.get("image_id") for f in findings if f.get("rule") in UNSAFE_FILE_RULES}
    parents = params.labels.attribute_parents
    names = list(params.labels.names)
    cards, drawn = [], 0
    for n, f in enumerate(findings):
        card = {**f, "src": None, "alt": None, "no_image": None}
        iid = f.get("image_id")
        im = ds.images.get(iid) if iid is not None else None
        if iid is None:
            card["no_image"] = "about the dataset as a whole"
        elif drawn >= params.report.findings_shown:
            card["no_image"] = f"thumbnail not drawn (report.findings_shown = {params.report.findings_shown})"
        elif im is None:
            card["no_image"] = f"image {iid} is not in annotations.json"
        elif iid in unsafe or ds.safe_path(im) is None:
            card["no_image"] = "the image file cannot be shown (see the file findings)"
        else:
            try:
                img, scale = draw.open_scaled(ds.safe_path(im), 360, Limits.of(params.validate))
            except Exception as exc:  # noqa: BLE001 - any unreadable image: say so, keep going
                card["no_image"] = f"the image cannot be read: {exc}"
            else:
                boxes, what = [], []
                ann = ds.anns.get(f.get("annotation_id"))
                for a in ds.by_image.get(iid, []):
                    if ann is not None and a["id"] == ann["id"] or not _finite_box(a.get("bbox")):
                        continue
                    if f.get("rule") == "ORPHAN_ATTRIBUTE" and ann is not None and \
                            a["label"] in parents.get(ann.get("label"), []):
                        boxes.append(draw.Box(a["label"], tuple(a["bbox"]), "context", f"parent? {a['label']}"))
                        what.append(f"nearby {a['label']} box (allowed parent)")
                    else:
                        boxes.append(draw.Box(str(a["label"]), tuple(a["bbox"]), "gt"))
                if f.get("rule") == "ORPHAN_ATTRIBUTE" and ann is not None and not what:
                    what.append(f"no {' or '.join(parents.get(ann.get('label'), []))} box in this image")
                if ann is not None and _finite_box(ann.get("bbox")):
                    boxes.append(draw.Box(str(ann["label"]), tuple(ann["bbox"]), "bad",
                                          f"{ann['label']} #{ann['id']}"))
                    what.insert(0, f"the offending {ann['label']} box (annotation {ann['id']}) in red")
                seen = f.get("data") if f.get("rule") == "UNLABELED_OBJECT" else None
                if isinstance(seen, dict) and _finite_box(seen.get("bbox")):  # what the reference model saw
                    label = str(seen.get("label"))
                    boxes.append(draw.Box(label, tuple(float(v) for v in seen["bbox"]), "suggest",
                                          f"unlabeled {label}? {float(seen.get('score', 0)):.2f}"))
                    what.insert(0, f"a suggested unlabeled {label} (dotted magenta)")
                rel = f"img/finding_{n:04d}.jpg"
                atomic.write_bytes(out / rel, draw.jpeg_bytes(draw.draw_boxes(img, boxes, names, scale),
                                                              params.report.jpeg_quality))
                drawn += 1
                card["src"] = rel
                card["alt"] = (f"Image {iid} ({im.get('file_name')}) with " + (", ".join(what) or
                               "its annotations drawn dashed") + f": {f.get('rule')}.")
        cards.append(card)
    return cards


def coverage(ds: RawDataset, params: Params) -> dict:
    """Verified images per camera and condition against Frigate+'s advice."""
    want = list(params.report.conditions)
    per_cam: dict[str, Counter] = defaultdict(Counter)
    for im in ds.images.values():
        if im.get("verified") is True and im.get("user_id", params.user.id) == params.user.id:
            per_cam[str(im.get("camera"))][str(im.get("condition") or "unknown")] += 1
    minimum = params.validate.warn_min_per_camera
    rows = []
    for cam in sorted(per_cam):
        c = per_cam[cam]
        total = sum(c.values())
        rows.append({"camera": cam, "verified": total, "enough": total >= minimum,
                     "short": max(0, minimum - total), "conditions": [c.get(k, 0) for k in want],
                     "other": ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in want)})
    return {"minimum": minimum, "conditions": want, "rows": rows}


# --------------------------------------------------------------------------- lineage

def _flatten(d, prefix="") -> dict[str, Any]:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def params_diff(current: dict, previous: dict) -> list[dict]:
    a, b = _flatten(previous), _flatten(current)
    return [{"key": k, "previous": json.dumps(a.get(k)), "current": json.dumps(b.get(k))}
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def lineage(params: Params, gate: Verdict | None, export: dict | None) -> dict:
    from camtune.contracts.registry import open_registry

    out: dict[str, Any] = {"git": provenance.git_revision(), "notes": []}
    try:
        out["dvc"] = provenance.dvc_hashes(params)
    except Exception as exc:  # noqa: BLE001 - lineage is informative; a hashing failure is shown
        out["dvc"] = {"source": f"not available: {exc}", "deps": {}}
    # dvc.lock entries carry md5 + size, folders also nfiles; computed ones the same keys
    out["datasets"] = [{"path": p, "md5": info.get("md5"), "size": info.get("size"),
                        "nfiles": info.get("nfiles")}
                       for p, info in sorted((out["dvc"].get("deps") or {}).items())
                       if p.startswith((params.data.user_dataset, params.data.global_pool, "artifacts/sample"))]
    # the base model id, the way publish names it
    out["base_id"] = None
    if (BASE_MODEL / "checkpoint").is_file():
        with tempfile.TemporaryDirectory(prefix="camtune-report-") as tmp:
            try:
                files = provenance.base_checkpoint_files(BASE_MODEL, Path(tmp))
                out["base_id"] = provenance.base_identity(BASE_MODEL, files)[0]
            except Exception as exc:  # noqa: BLE001
                out["notes"].append(f"base model id not available: {exc}")
    # the published id is derived from the exported files: the same id publish gives this model
    files = {n: EXPORT / n for n in provenance.MODEL_ID_FILES if (EXPORT / n).is_file()}
    out["model_id"] = provenance.content_model_id(params.user.id, files) if "model.tflite" in files else None
    out["edgetpu"] = (export or {}).get("edgetpu") or {}
    out["edgetpu_compiled"] = out["edgetpu"].get("status") == "compiled" and "model_edgetpu.tflite" in files
    out["onnx"] = (export or {}).get("onnx") or {}
    out["onnx_built"] = out["onnx"].get("status") == "built" and "model.onnx" in files
    # the params the previous published model was trained with (the gate's registry baseline)
    baseline = gate.baseline if gate is not None else None
    inc_name = (gate.incumbent or {}).get("name") if gate is not None else None
    if isinstance(inc_name, str) and inc_name.startswith("registry:"):
        baseline = inc_name  # the model the user runs now (the gate's baseline is the base)
    out["previous_model"] = None
    out["params_diff"] = []
    if isinstance(baseline, str) and baseline.startswith("registry:"):
        prev = baseline.removeprefix("registry:")
        out["previous_model"] = prev
        try:
            prev_lineage = open_registry(params.publish.registry).read_json(params.user.id, prev, "lineage.json")
            previous = prev_lineage.get("params") if isinstance(prev_lineage.get("params"), dict) else {}
            out["params_diff"] = params_diff(model_params(params), model_params(previous))
        except Exception as exc:  # noqa: BLE001
            out["notes"].append(f"previous model {prev}: lineage not readable: {exc}")
    return out


# --------------------------------------------------------------------------- the page

def _generated_at() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = (dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch and epoch.isdigit()
         else dt.datetime.now(dt.timezone.utc))
    return t.strftime("%Y-%m-%d %H:%M UTC")


def wrap_names(name: str) -> markupsafe.Markup:
    """`frigate_global.false_free`, `class_loss[license_plate]`: escaped, with a line-break
    opportunity after each dot and before each bracket, so the checks table fits the page."""
    text = str(markupsafe.escape(name))
    return markupsafe.Markup(text.replace(".", ".<wbr>").replace("[", "<wbr>["))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("camtune.steps.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["wrap_names"] = wrap_names
    return env


def build(params: Params, out: Path) -> dict:
    """Render the page into `out` (an empty folder); returns the summary (verdict, sections)."""
    names = list(params.labels.names)
    validation = read_json(VALIDATE)
    gate = Verdict.read_optional(artifacts.GATE)  # None when evaluate has not run (or left nothing readable)
    details = read_json(EVALUATE / "details.json")
    export = read_json(EXPORT / "export.json")
    filters = (EVALUATE / "filters.yml").read_text() if (EVALUATE / "filters.yml").is_file() else None
    advice = {a["label"]: a for a in (details or {}).get("advice") or [] if isinstance(a, dict)}
    min_score = {label: float(a.get("min_score", 0.5)) for label, a in advice.items()}

    user_ds = RawDataset(params.data.user_dataset)
    verdict = verdict_of(gate)
    ctx = {
        "user_id": params.user.id,
        "verdict": verdict,
        "sentence": verdict_sentence(gate, validation),
        "checks": check_rows(gate),
        "confidence": gate.confidence if gate is not None else None,
        "gate_summary": gate.summary if gate is not None else None,
        "incumbent": incumbent_view(gate),
        "gate_notes": [n for n in (details or {}).get("notes") or [] if isinstance(n, str)],
        "cameras": camera_strips(params, out, min_score) if gate is not None else [],
        "tables": label_tables(details, names),
        "charts": pr_charts(details, names, out) if details else [],
        "filters": filters,
        "validation": validation,
        "findings": finding_cards(validation, user_ds, params, out),
        "coverage": coverage(user_ds, params),
        "dataset_ok": user_ds.ok,
        "dataset": params.data.user_dataset,
        "lineage": lineage(params, gate, export),
        "match_iou": params.report.match_iou,
        "labels": [{"name": n, "colour": draw.label_colour(names, n)} for n in names],
        "generated_at": _generated_at(),
    }
    html = _env().get_template("report.html.j2").render(**ctx)
    atomic.write_text(out / "index.html", html)
    return {"verdict": verdict, "sentence": ctx["sentence"],
            "validation_passed": None if validation is None else validation.get("passed"),
            "model_id": ctx["lineage"]["model_id"], "figures": sum(len(g["figures"]) for s in ctx["cameras"]
                                                                   for g in s["groups"]),
            "findings": len(ctx["findings"])}


def page_weight(out: Path) -> int:
    """Bytes of the page and everything beside it."""
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def summary_markdown(summary: dict, index: Path, weight: int) -> str:
    return "\n".join([
        f"# Run report: {summary['verdict']}", "", summary["sentence"], "",
        f"- page: `{index}` ({weight / 1e6:.2f} MB with its images)",
        f"- base vs tuned pictures: {summary['figures']}; validation findings: {summary['findings']}",
        *([f"- model id: `{summary['model_id']}`"] if summary.get("model_id") else []), ""])
