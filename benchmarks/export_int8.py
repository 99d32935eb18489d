"""int8 vs float TFLite, side by side: CPU latency with 2 threads (goal: int8 <= 0.5x float) and
COCO mAP on the evaluation sets (goal: int8 within 1.0 point of float).

Both models come from the same Model Garden serving export of one checkpoint, with the same
TFLite_Detection_PostProcess, and run through the same Frigate-style runner; the int8 one is
exactly what the export step writes (calibrated on the user's non-holdout images + replay images).

    python benchmarks/export_int8.py                       # artifacts/finetune/model, DVC layout
    python benchmarks/export_int8.py --model-dir M --eval global=path/to/manifest.json \
        --calib path/to/replay.json --runs 50
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)


def latency_ms(model: Path, size: int, runs: int, threads: int) -> tuple[float, float]:
    import numpy as np

    from camtune.model.tflite import TFLiteDetector

    det = TFLiteDetector(model, num_threads=threads)
    frame = np.random.default_rng(0).integers(0, 255, (1, size, size, 3), dtype=np.uint8)
    for _ in range(5):
        det.detect_raw(frame)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        det.detect_raw(frame)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main(argv=None) -> int:
    from camtune.core.config import parse_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--model-dir", default="artifacts/finetune/model")
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=MANIFEST",
                    help="evaluation sets (default: user_holdout and global_eval of the DVC layout)")
    ap.add_argument("--calib", action="append", default=[], metavar="MANIFEST",
                    help="calibration manifests (default: the user's non-holdout images + replay)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    from camtune.contracts import artifacts
    from camtune.core import config
    from camtune.contracts.artifacts import Manifest
    from camtune.core.dataset import load_dataset
    from camtune.steps.export import fidelity, to_tflite as tflite
    from camtune.model.images import load_rgb

    def manifest_subset(path):
        m = Manifest.read(path)
        return m.dataset(), list(m.image_ids)

    params = config.load(args.params, parse_overrides(args.overrides))
    size, names = params.training.input_size, list(params.labels.names)
    evals = dict(e.split("=", 1) for e in args.eval) or {"user_holdout": str(artifacts.HOLDOUT),
                                                         "global_eval": str(artifacts.GLOBAL_EVAL)}
    sets = {name: Manifest.read(path).subset() for name, path in evals.items()}
    if args.calib:
        pools = [manifest_subset(p) for p in args.calib]
    else:
        hold_ds, hold_ids = manifest_subset(artifacts.HOLDOUT)
        user = load_dataset(params.data.user_dataset).verified().of_user(params.user.id)
        pools = [(user, sorted(set(user.images["id"]) - set(hold_ids))), manifest_subset(artifacts.REPLAY)]
    calib = tflite.calibration_paths(pools, params.export.representative_images)

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        saved = tflite.export_saved_model(args.model_dir, tmp / "sm", input_size=size,
                                          max_detections=params.export.max_detections)
        models = {"float": tmp / "float.tflite", "int8": tmp / "int8.tflite"}
        models["float"].write_bytes(tflite.convert(saved, None))
        models["int8"].write_bytes(tflite.convert(
            saved, lambda: tflite.representative_frames((load_rgb(p) for p in calib), size)))
        print(f"exported both from {args.model_dir} in {time.perf_counter() - t0:.0f}s "
              f"({len(calib)} calibration images, input {size}x{size})")
        rows = {}
        for kind, path in models.items():
            med, p90 = latency_ms(path, size, args.runs, args.threads)
            rows[kind] = {"mb": path.stat().st_size / 2**20, "median": med, "p90": p90,
                          **{n: fidelity.tflite_map(path, ds, names)
                             for n, ds in sets.items()}}

    f, q = rows["float"], rows["int8"]
    header = f"{'':10}{'size MB':>9}{'median ms':>11}{'p90 ms':>9}" + "".join(
        f"{n + ' mAP':>22}{'mAP50':>8}" for n in sets)
    print(header)
    for kind, r in rows.items():
        print(f"{kind:10}{r['mb']:9.2f}{r['median']:11.1f}{r['p90']:9.1f}" + "".join(
            f"{fidelity.fmt(r[n]['map']):>22}{fidelity.fmt(r[n]['map50']):>8}" for n in sets))
    ratio = q["median"] / f["median"]
    print(f"\nlatency int8/float ({args.threads} threads, {args.runs} runs): {ratio:.2f}x "
          f"(goal <= 0.50x: {'met' if ratio <= 0.5 else 'NOT met'})")
    for n in sets:
        drop = 100 * ((f[n]["map"] or 0) - (q[n]["map"] or 0))
        print(f"{n}: mAP drop {drop:+.2f} points (goal <= 1.0: {'met' if drop <= 1.0 else 'NOT met'}; "
              f"{sets[n].images.shape[0]} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
