"""Latency per export target on this CPU, side by side: batch 1, median over N Frigate-style regions,
the same thread count for every runtime (docs/detectors.md has the figures).

    float TensorFlow      the network of the checkpoint as Model Garden runs it (float, tf.function,
                          the ONNX export's graph: decode + NMS). Not the TFLite's SavedModel: its
                          post-processing is a TFLite composite whose TensorFlow body is a stub, so
                          TensorFlow prunes the whole network from it (measured: 1.5 ms).
    TFLite float / int8   ai_edge_litert, what Frigate's cpu detector runs (model.tflite is int8)
    ONNX yolonas          onnxruntime CPU provider (Frigate's onnx detector) and OpenVINO CPU
                          (Frigate's openvino detector), NMS inside the graph
    ONNX yolo-generic     the same two runtimes, NMS by Frigate's post-processing (timed apart)

"model ms" is the runtime call alone; "post ms" is what the detector does with the outputs before
Frigate sees 20 rows (our re-implementation of its parsing; for yolo-generic that includes
Frigate's NMS, whose cost grows with the anchors over its 0.4 floor: `cand` is their median count).

    python benchmarks/detectors_latency.py                          # artifacts/finetune/model
    python benchmarks/detectors_latency.py --model-dir M --regions 100 --threads 2

Without a model folder it builds an untrained one (tests/support/export.py: Model Garden's MobileDet
at params.yaml's size, classifier bias zeroed so every anchor scores ~0.5, the worst case for
Frigate's yolo-generic NMS). The network's latency does not depend on its weights; the regions are
crops around the objects of a small synthetic dataset (camtune.steps.sample_data).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)


def regions(params, n: int, work: Path) -> list:
    """n uint8 [1,S,S,3] Frigate-style regions around the objects of a small synthetic dataset."""
    from camtune.core import config
    from camtune.steps.sample_data import generate
    from camtune.core.dataset import load_dataset
    from camtune.steps.export import to_tflite as tflite
    from camtune.model.images import load_rgb

    folders = {"global_pool": str(work / "global"), "user_dataset": str(work / "user")}
    p = config.load(config.ROOT / "params.yaml", {
        "sample_data.global_images": 24, "sample_data.user_images": 24, "sample_data.user_images_in_pool": 8,
        "training.input_size": params.training.input_size,
        **{f"sample_data.{k}": v for k, v in folders.items()}, **{f"data.{k}": v for k, v in folders.items()}})
    generate(p)
    ds = load_dataset(folders["user_dataset"])
    items = []
    for r in ds.images.itertuples():
        a = ds.annotations[ds.annotations["image_id"] == r.id]
        items.append((load_rgb(ds.image_path(r.file_name)),
                      [(x, y, x + w, y + h) for x, y, w, h in zip(a.x, a.y, a.w, a.h)]))
    crops = list(tflite.region_crops(items, params.training.input_size))
    return [c[None] for c in crops[:n]]


def oracle_yolo_generic(params, work: Path, images: int) -> tuple[int, int, int, int]:
    """A perfect detector through Frigate's yolo-generic post-processing: every labelled object in
    each Frigate region of a synthetic dataset becomes one anchor (its true box, score 0.9), all
    other anchors score 0. Returns (objects, kept by Frigate's NMS, kept by the same NMS reading
    the boxes right, regions): what yolo-generic loses to Frigate's box mix-up alone. The yolonas
    model's in-graph NMS (IoU 0.5, boxes read right) keeps at least the latter."""
    import cv2
    import numpy as np

    from camtune.core import config
    from camtune.steps.sample_data import generate
    from camtune.core.dataset import load_dataset
    from camtune.model import onnx as O
    from camtune.model import regions as R

    size, k = params.training.input_size, len(params.labels.names)
    folders = {"global_pool": str(work / "global"), "user_dataset": str(work / "user")}
    p = config.load(config.ROOT / "params.yaml", {
        "sample_data.global_images": 24, "sample_data.user_images": images, "sample_data.user_images_in_pool": 8,
        **{f"sample_data.{k}": v for k, v in folders.items()}, **{f"data.{k}": v for k, v in folders.items()}})
    generate(p)
    ds = load_dataset(folders["user_dataset"])
    objects = kept = right = n_regions = 0
    for r in ds.images.itertuples():
        a = ds.annotations[ds.annotations["image_id"] == r.id]
        boxes = [(x, y, x + w, y + h) for x, y, w, h in zip(a.x, a.y, a.w, a.h)]
        for reg in R.object_regions((r.height, r.width), boxes, R.min_region_size(size)) if boxes else []:
            side = reg[2] - reg[0]
            inside = [b for b in boxes if b[0] >= reg[0] and b[1] >= reg[1] and b[2] <= reg[2] and b[3] <= reg[3]]
            if not inside:
                continue
            out = np.zeros((1, 4 + k, 100 + len(inside)), np.float32)  # more anchors than rows, as a real model
            xywh = []
            for i, b in enumerate(inside):
                x0, y0, x1, y1 = ((v - o) * size / side for v, o in zip(b, (reg[0], reg[1], reg[0], reg[1])))
                out[0, :4, i] = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
                out[0, 4 + (i % k), i] = 0.9   # classes do not matter: Frigate's NMS ignores them
                xywh.append([x0, y0, x1 - x0, y1 - y0])
            rows = O.yolo_generic_rows(out, size, size)
            objects += len(inside)
            kept += int((rows[:, 1] > 0).sum())
            right += min(20, len(cv2.dnn.NMSBoxes(xywh, [0.9] * len(xywh), O.SCORE_FLOOR, O.NMS_IOU)))
            n_regions += 1
    return objects, kept, right, n_regions


def timed(fn, frames, warmup: int = 3) -> list[float]:
    for f in frames[:warmup]:
        fn(f)
    out = []
    for f in frames:
        t0 = time.perf_counter()
        fn(f)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv=None) -> int:
    import numpy as np

    from camtune.core import config
    from camtune.core.config import parse_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--model-dir", default="artifacts/finetune/model")
    ap.add_argument("--regions", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--oracle-images", type=int, default=100,
                    help="synthetic user images for the perfect-detector check of yolo-generic's NMS")
    args = ap.parse_args(argv)
    params = config.load(args.params, parse_overrides(args.overrides))
    size, names, n_det = params.training.input_size, list(params.labels.names), params.export.max_detections

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from camtune.steps.export import to_onnx as X
    from camtune.steps.export import to_tflite as tflite
    from camtune.model import onnx as O
    from camtune.model.tflite import TFLiteDetector

    with tempfile.TemporaryDirectory(prefix="bench-detectors-") as tmp:
        tmp = Path(tmp)
        model_dir = Path(args.model_dir)
        weights = f"trained ({model_dir})"
        if not (model_dir / "checkpoint").is_file():
            from tests.support.export import make_model_dir

            model_dir, weights = make_model_dir(tmp / "model", params), "untrained (scores ~0.5 everywhere)"
        frames = regions(params, args.regions, tmp / "data")
        t0 = time.perf_counter()
        saved = tflite.export_saved_model(model_dir, tmp / "sm", input_size=size, max_detections=n_det)
        (tmp / "float.tflite").write_bytes(tflite.convert(saved, None))
        (tmp / "int8.tflite").write_bytes(tflite.convert(
            saved, lambda: tflite.representative_frames((f[0] for f in frames[:20]), size)))
        for mt in X.MODEL_TYPES:
            X.build(model_dir, tmp / mt, input_size=size, label_names=names, supported=["onnx", "openvino"],
                    model_type=mt, max_detections=n_det)
        print(f"built every target from {weights} in {time.perf_counter() - t0:.0f} s; input {size}x{size}, "
              f"{len(frames)} regions, batch 1, {args.threads} threads")

        rows = []
        graph = X.detector_function(model_dir, input_size=size, max_detections=n_det)
        rows.append(("float TensorFlow (Model Garden graph + NMS)",
                     timed(lambda f: graph(tf.constant(f))[X.OUTPUT_NAME].numpy(), frames), None, None))
        for label, path in (("TFLite float (cpu detector)", tmp / "float.tflite"),
                            ("TFLite int8 (cpu detector)", tmp / "int8.tflite")):
            det = TFLiteDetector(path, num_threads=args.threads)
            rows.append((label, timed(det.detect_raw, frames), None, None))
        for mt in X.MODEL_TYPES:
            for runtime, detector in (("onnxruntime", "onnx"), ("openvino", "openvino")):
                det = O.ONNXDetector(tmp / mt / "model.onnx", runtime=runtime, num_threads=args.threads)
                outs = {}

                def model(f, det=det, outs=outs):
                    outs[id(f)] = det.run(O.frigate_input(f, det.info))
                model_ms = timed(model, frames)
                parse = O.yolonas_rows if mt == "yolonas" else O.yolo_generic_rows
                post_ms = timed(lambda f: parse(outs[id(f)], size, size), frames, warmup=0)
                cand = None
                if mt == "yolo-generic":
                    cand = statistics.median(int((np.squeeze(outs[id(f)])[4:].max(axis=0) > O.SCORE_FLOOR).sum())
                                             for f in frames)
                rows.append((f"ONNX {mt} on {runtime} ({detector} detector)", model_ms, post_ms, cand))
                if mt == "yolo-generic" and runtime == "onnxruntime":
                    generic = [outs[id(f)] for f in frames]

    print(f"\n{'target':52}{'model ms':>10}{'p90':>8}{'post ms':>9}{'total ms':>10}{'cand':>7}")
    for label, model_ms, post_ms, cand in rows:
        med = statistics.median(model_ms)
        p90 = sorted(model_ms)[int(0.9 * (len(model_ms) - 1))]
        post = statistics.median(post_ms) if post_ms else 0.0
        print(f"{label:52}{med:10.1f}{p90:8.1f}{(f'{post:.2f}' if post_ms else '-'):>9}{med + post:10.1f}"
              f"{(str(int(cand)) if cand is not None else '-'):>7}")

    # Frigate's yolo-generic post-processing against the anchors over its floor: a trained model
    # has far fewer than the untrained one (keep the k best anchors' scores, lower the rest)
    print(f"\nFrigate's yolo-generic post-processing vs anchors over the 0.4 floor ({len(generic)} outputs):")
    for k in (0, 10, 100, 1000, 18900):
        outs_k = []
        for out in generic:
            o = np.array(out, copy=True)
            best = o[0, 4:].max(axis=0)
            low = np.argsort(-best)[k:]
            o[0, 4:, low] = np.minimum(o[0, 4:, low], 0.1)
            outs_k.append(o)
        ms = timed(lambda o: O.yolo_generic_rows(o, size, size), outs_k, warmup=1)
        print(f"  {k:6d} anchors: {statistics.median(ms):7.2f} ms")

    with tempfile.TemporaryDirectory(prefix="bench-oracle-") as tmp:
        objects, kept, right, n = oracle_yolo_generic(params, Path(tmp), args.oracle_images)
    print(f"\na perfect detector through Frigate's yolo-generic NMS ({args.oracle_images} synthetic user images, "
          f"{n} object regions, {objects} objects): kept {kept} ({100 * kept / max(1, objects):.1f}%); the same "
          f"NMS reading the boxes right keeps {right} ({100 * right / max(1, objects):.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
