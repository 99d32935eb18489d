"""Benchmark: validate on pathological sizes (issue 18), each at N, 2N and 4N so growth is visible.

    python benchmarks/validate_pathological.py [--scale 1.0] [--cases boxes,images,json]

Cases (4N is the issue's size; --scale multiplies every N):
- boxes:  one image with N persons and N faces inside them (N up to 10,000): the attribute
          containment check, TOO_MANY_BOXES naming the image; full `validate()`.
- images: N images (up to 100,000) with two boxes each, every one a real tiny PNG on disk;
          full `validate()` (file checks included).
- json:   an annotations.json of N MB (up to 200 MB, about 1.9M boxes): reading, depth scan,
          schema, tables and containment (`prepare` + those checks; the file checks are the
          `images` case's, so the images here need no files).

Each run is its own subprocess; it prints wall time, CPU time and the process's peak RSS, and the
peak above the RSS right after imports (GX, pandas), which is what the dataset costs. The last
columns compare each step with the previous size (CPU time: the machine may be shared; memory
above base): x2 input should give about x2 (N log N a little more).

Measured (2 cores shared with ~8 other jobs, so wall >> CPU; CPU s / MiB above base):
  boxes   2,500 / 5,000 / 10,000 persons+faces: 0.92 / 1.25 / 2.16 s, 69 / 68 / 71 MiB
          (the 4000x3000 frame's decode dominates memory; TOO_MANY_BOXES names the image)
  images  25,000 / 50,000 / 100,000: 11.4 / 22.0 / 43.5 s (x1.94, x1.98), 101 / 162 / 304 MiB
  json    50 / 100 / 200 MB: 31.7 / 61.4 / 113.0 s (x1.94, x1.84), 429 / 850 / 1685 MiB (x1.98, x1.98);
          jsonschema is most of the CPU (the 200 MB run was its own child run: the whole script hit
          its 50 min timeout on the busy machine)
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's camtune, not an installed one
USER = "bench"
LABELS = ["person", "face", "car", "license_plate"]


def _categories():
    parents = {"face": ["person"], "license_plate": ["car"]}
    return [{"id": i + 1, "name": n, "attribute_of": parents.get(n, [])} for i, n in enumerate(LABELS)]


def _image(iid, name, w, h):
    return {"id": iid, "file_name": name, "width": w, "height": h, "user_id": USER, "camera": f"cam{iid % 3}",
            "captured_at": "2026-01-01T12:00:00Z", "verified": True, "verified_at": "2026-01-02T12:00:00Z",
            "condition": ["day", "night"][iid % 2]}


def _tiny_png(seed: int) -> bytes:
    from PIL import Image
    import numpy as np

    arr = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG", compress_level=1)
    return b.getvalue()


def build_boxes(root: Path, n: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    w, h = 4000, 3000
    (root / "images").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (w, h)).save(root / "images/crowd.png")
    x, y = rng.uniform(0, w - 40, n), rng.uniform(0, h - 80, n)
    anns = []
    for i in range(n):
        anns.append({"id": 2 * i + 1, "image_id": 1, "category_id": 1, "bbox": [x[i], y[i], 40.0, 80.0]})
        anns.append({"id": 2 * i + 2, "image_id": 1, "category_id": 2, "bbox": [x[i] + 12, y[i] + 4, 16.0, 16.0]})
    coco = {"images": [_image(1, "images/crowd.png", w, h)], "annotations": anns, "categories": _categories()}
    (root / "annotations.json").write_text(json.dumps(coco))


def build_images(root: Path, n: int) -> None:
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(1, n + 1):
        name = f"images/{i:06d}.png"
        (root / name).write_bytes(_tiny_png(i))
        images.append(_image(i, name, 16, 16))
        anns.append({"id": 2 * i - 1, "image_id": i, "category_id": 1, "bbox": [1, 1, 12, 14]})
        anns.append({"id": 2 * i, "image_id": i, "category_id": 2, "bbox": [3, 2, 5, 5]})
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                       "categories": _categories()}))


def build_json(root: Path, megabytes: int) -> None:
    """About `megabytes` MB of annotations.json, streamed (the builder never holds it all)."""
    root.mkdir(parents=True)
    target = int(megabytes * 10**6)
    per_image = 10
    with open(root / "annotations.json", "w") as fh:
        fh.write('{"categories": ' + json.dumps(_categories()) + ', "images": [')
        size, i, img_parts = 0, 0, []
        # ~107 bytes per box, ~260 per image: images first, then their boxes
        n_img = max(1, int(target / (per_image * 107 + 260)))
        for i in range(1, n_img + 1):
            fh.write(("," if i > 1 else "") + json.dumps(_image(i, f"images/{i:07d}.jpg", 1920, 1080)))
        fh.write('], "annotations": [')
        aid = 0
        for i in range(1, n_img + 1):
            for k in range(per_image // 2):
                x, y = (k * 300) % 1800, (k * 170) % 900
                for cat, box in ((1, [x, y, 100.5, 180.25]), (2, [x + 30, y + 10, 30.5, 30.25])):
                    aid += 1
                    fh.write(("," if aid > 1 else "") + json.dumps(
                        {"id": aid, "image_id": i, "category_id": cat, "bbox": box, "area": box[2] * box[3],
                         "iscrowd": 0}))
        fh.write("]}")


BUILD = {"boxes": build_boxes, "images": build_images, "json": build_json}
# the sizes (4N); N and 2N are a quarter and a half of them
SIZES = {"boxes": 10_000, "images": 100_000, "json": 200}
UNIT = {"boxes": "persons+faces", "images": "images", "json": "MB"}


def child(case: str, root: str, registry: str) -> None:
    """Runs in a subprocess: import, note the RSS, validate, print one JSON line."""
    from camtune.core import config
    from camtune.steps import validate as validation

    params = config.load(ROOT / "params.yaml", {
        "data.user_dataset": root, "user.id": USER, "publish.registry.kind": "local",
        "publish.registry.root": registry, "validate.reference_model": None,
        "validate.max_annotations_bytes": 512 * 2**20})
    import great_expectations  # noqa: F401  (imported by the table check; count it as baseline)

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t, c = time.perf_counter(), time.process_time()
    if case == "json":
        ctx = validation.prepare(params)
        results = [validation.check_schema(ctx), validation.check_tables(ctx), validation.check_attributes(ctx)]
        errors = sum(f.severity == "error" for r in results for f in r.findings)
        rules = sorted({f.rule for r in results for f in r.findings})
    else:
        report = validation.validate(params)
        errors = len(report.errors())
        rules = sorted({f.rule for f in report.findings})
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak": peak, "base": base, "errors": errors, "rules": rules}))


def run_case(case: str, size, tmp: Path) -> dict:
    root = tmp / f"{case}-{size}"
    t = time.perf_counter()
    BUILD[case](root, size)
    built = time.perf_counter() - t
    proc = subprocess.run([sys.executable, __file__, "--child", case, str(root), str(tmp / "registry")],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
    if proc.returncode != 0:
        raise SystemExit(f"{case} {size}: child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["json_mb"] = (root / "annotations.json").stat().st_size / 1e6
    out["built"] = built
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size (e.g. 0.1 for a quick look)")
    ap.add_argument("--cases", default="boxes,images,json")
    ap.add_argument("--child", nargs=3, metavar=("CASE", "ROOT", "REGISTRY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    mib = 2**20
    print(f"{'case':8}{'size':>16}{'json MB':>9}{'wall s':>9}{'cpu s':>8}{'peak MiB':>10}{'above base':>12}"
          f"{'x cpu':>8}{'x mem':>7}  findings")
    with tempfile.TemporaryDirectory(prefix="camtune-bench-") as tmp:
        for case in args.cases.split(","):
            prev = None
            for factor in (1, 2, 4):
                size = SIZES[case] * args.scale * factor / 4
                size = round(size, 2) if case == "json" else max(1, int(size))
                r = run_case(case, size, Path(tmp))
                above = max(0, r["peak"] - r["base"])
                grow = ("", "") if prev is None else (f"{r['cpu'] / prev['cpu']:.2f}",
                                                       f"{above / max(1, prev['above']):.2f}")
                print(f"{case:8}{f'{size:,} {UNIT[case]}':>16}{r['json_mb']:>9.1f}{r['wall']:>9.2f}{r['cpu']:>8.2f}"
                      f"{r['peak'] / mib:>10.0f}{above / mib:>12.0f}{grow[0]:>8}{grow[1]:>7}  "
                      f"{r['errors']} errors: {', '.join(r['rules']) or '-'}", flush=True)
                prev = {**r, "above": above}


if __name__ == "__main__":
    main()
