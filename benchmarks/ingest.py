"""Benchmark: data in. (1) Frigate import throughput: 1,000 events with 1280x720 WebP clean
snapshots from a Frigate API on loopback (tests/support/frigate.py), through the real client
(requests + urllib3 retries), decode, PNG store, batch-atomic dataset writes. (2) The suggestion
pass in images/s: validate's audit loop (decode, letterbox, TFLite invoke, merge) over unverified
sample-data images.

    python benchmarks/ingest.py [--events 1000] [--batch-size 25] [--images 60] [--model M.tflite]

Without --model the suggestion pass runs a fixed-output 320x320 TFLite model (the cost is then the
loop: decode, letterbox, invoke, merge, not a detector); pass a real export for detector figures.
Prints wall-clock and per-CPU-second rates (the machine may be shared).
Measured (2 cores shared with other jobs, load average ~25; noisy 1280x720 WebP of 198 KB -> JPEG q95):
import 4.4 events/s wall with 4 threads (3.1 with 1), 33 events per CPU-second (WebP decode + JPEG
encode are ~all of it); a re-run with nothing new 217-320 events/s (listing only); suggestions
with the fixed 320x320 model 9.9 images/s wall, 152 per CPU-second (640x360 sample images).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_import(n: int, batch_size: int, page_size: int, work: Path, store: str = "jpeg", workers: int = 4) -> dict:
    from tests.support.frigate import FrigateServer, make_event, snapshot_bytes

    from camtune.core import config
    from camtune.steps.ingest import frigate as fr

    params = config.load(ROOT / "params.yaml")
    img = snapshot_bytes(1280, 720, "WEBP", noise=12.0)
    root = work / "frigate_user"
    work.mkdir(parents=True, exist_ok=True)
    with FrigateServer() as srv:
        for i in range(n):
            srv.add(make_event(i, camera=("front", "drive")[i % 2], label=("person", "car", "dog")[i % 3],
                               attributes=[{"box": [0.12, 0.22, 0.02, 0.03], "label": "face", "score": 0.7}]),
                    img, "webp")
        opts = fr.ImportOptions(user_id=params.user.id, label_names=tuple(params.labels.names),
                                attribute_parents=dict(params.labels.attribute_parents),
                                label_map=dict(params.ingest.frigate.label_map), page_size=page_size,
                                batch_size=batch_size, store=store, workers=workers, progress=False)
        counts, wall, cpu = timed(lambda: fr.import_frigate(fr.FrigateClient(srv.url), root, opts))
        _, wall2, cpu2 = timed(lambda: fr.import_frigate(fr.FrigateClient(srv.url), root, opts))
    assert counts["imported"] == n
    stored = sum(p.stat().st_size for p in (root / "images").rglob("*") if p.is_file()) / n / 1024
    return {"events": n, "wall_s": wall, "cpu_s": cpu, "rerun_wall_s": wall2, "rerun_cpu_s": cpu2,
            "snapshot_kb": len(img) / 1024, "stored_kb": stored, "store": store, "workers": workers}


def bench_suggest(n_images: int, model: str | None, work: Path) -> dict:
    from tests.steps.ingest.test_suggest import build_fixed_detector

    from camtune.core import config
    from camtune.steps.sample_data import generate
    from camtune.model.tflite import TFLiteDetector
    from camtune.steps.ingest import load_coco
    from camtune.steps.ingest import suggest as sg

    folders = {"global_pool": str(work / "g"), "user_dataset": str(work / "users" / "u_demo")}
    params = config.load(ROOT / "params.yaml", {
        "sample_data.global_images": 8, "sample_data.user_images": n_images, "sample_data.user_images_in_pool": 0,
        "sample_data.global_pool": folders["global_pool"], "sample_data.users_dir": str(work / "users"),
        **{f"data.{k}": v for k, v in folders.items()}})
    generate(params)
    names = list(params.labels.names)
    if model is None:
        model = str(build_fixed_detector(work / "fixed320.tflite", names, size=320))
    detector = TFLiteDetector(model, label_names=names)
    root = Path(folders["user_dataset"])
    coco = load_coco(root, names, dict(params.labels.attribute_parents))
    for img in coco["images"]:
        img["verified"] = False
    names, rules = tuple(names), params.ingest.suggest
    sg.suggest(root, {**coco, "images": coco["images"][:2]}, detector, names, rules)  # warm-up
    (_, _, counts), wall, cpu = timed(lambda: sg.suggest(root, coco, detector, names, rules))
    return {"images": counts["images"], "wall_s": wall, "cpu_s": cpu, "model": Path(model).name,
            "size": f"{coco['images'][0]['width']}x{coco['images'][0]['height']}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=25)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--model")
    ap.add_argument("--store", nargs="+", default=["jpeg", "png"], help="storage formats to compare")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 4], help="download/re-encode threads to compare")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="camtune-bench-ingest-"))
    print(f"{'measure':44s} {'count':>7s} {'wall s':>8s} {'per s (wall)':>13s} {'per CPU-s':>10s}", flush=True)
    try:
        for s in args.store:
            for w in args.workers:  # each line as soon as it is measured
                imp = bench_import(args.events, args.batch_size, args.page_size, work / f"{s}{w}", s, w)
                label = (f"import WebP {imp['snapshot_kb']:.0f}KB -> {imp['store']} {imp['stored_kb']:.0f}KB, "
                         f"{imp['workers']} thr")
                print(f"{label:44s} {imp['events']:7d} {imp['wall_s']:8.2f} {imp['events'] / imp['wall_s']:13.1f} "
                      f"{imp['events'] / imp['cpu_s']:10.1f}", flush=True)
                print(f"{'  re-run (nothing new)':44s} {imp['events']:7d} {imp['rerun_wall_s']:8.2f} "
                      f"{imp['events'] / imp['rerun_wall_s']:13.1f} {imp['events'] / imp['rerun_cpu_s']:10.1f}",
                      flush=True)
        sug = bench_suggest(args.images, args.model, work)
        print(f"{'suggest (%s, %s images)' % (sug['model'], sug['size']):44s} {sug['images']:7d} {sug['wall_s']:8.2f} "
              f"{sug['images'] / sug['wall_s']:13.1f} {sug['images'] / sug['cpu_s']:10.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
