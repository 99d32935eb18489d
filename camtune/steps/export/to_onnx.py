"""Model Garden checkpoint -> an ONNX model Frigate's `onnx` and `openvino` detectors load as-is.

Input (both model types): one uint8 NHWC `[1, S, S, 3]` of raw RGB pixels (`inputDataType: int`,
the same frame the `.tflite` takes; the normalisation is in the graph). Output, by Frigate model type
(`export.onnx_model_type`; docs/detectors.md says why `yolonas` is the default):

- `yolonas` (flat): one float32 `[M, 7]`, M <= max_detections, rows `(0, x_min, y_min, x_max,
  y_max, score, class)` in input pixels, best score first. The NMS is in the graph and is the
  `.tflite`'s: one class per box (its best), one pass over all classes, score 0.05, IoU 0.5. The
  rows are sorted explicitly after the NMS, because Frigate reads 20 of them and stops at the first
  under 0.4.
- `yolo-generic`: one float32 `[1, 4 + K, N]`, every anchor's decoded `cx, cy, w, h` in input
  pixels and its K class scores; Frigate runs its own NMS (`camtune.model.onnx`).

The graph is Model Garden's own: backbone, decoder and head of the restored checkpoint, anchors from
the serving module, boxes decoded by the model's `detection_generator` with NMS off; the NMS is
TensorFlow's. tf2onnx turns that tf.function into ONNX; nothing of the network is rewritten by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from camtune.model.checkpoint import latest_checkpoint, read_experiment

# ONNX opset: 17 loads in onnxruntime >= 1.13 and every OpenVINO since 2023 (Frigate 0.17 ships
# onnxruntime 1.22 and OpenVINO 2025.4).
OPSET = 17
MAX_IR_VERSION = 10   # onnxruntime 1.22, Frigate 0.17's, refuses newer files
INPUT_NAME = "images"
OUTPUT_NAME = "output0"
MODEL_TYPES = ("yolonas", "yolo-generic")
# the .tflite's post-processing (camtune.steps.export.to_tflite), so both files are the same detector
NMS_SCORE_THRESHOLD = 0.05
NMS_IOU_THRESHOLD = 0.5


def detector_function(model_dir: str | Path, *, input_size: int, model_type: str = "yolonas",
                      max_detections: int = 25, checkpoint: str | None = None):
    """The tuned model as a tf.function uint8 [1,S,S,3] raw RGB -> {OUTPUT_NAME: the model type's
    output} (module docstring)."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model type {model_type!r}: one of {', '.join(MODEL_TYPES)}")
    import tensorflow as tf
    from official.vision.ops import preprocess_ops
    from official.vision.serving import detection

    exp = read_experiment(model_dir)
    ckpt = checkpoint or latest_checkpoint(model_dir)
    exp.task.model.input_size = [input_size, input_size, 3]
    gen = exp.task.model.detection_generator
    gen.apply_nms = False          # decoded boxes and per-class scores of every anchor
    gen.nms_version = "batched"    # (not "tflite"/"v3": those paths decode differently or need NMS)
    module = detection.DetectionModule(params=exp, batch_size=1, input_image_size=[input_size, input_size],
                                       input_type="tflite", num_channels=3)
    model = module.model
    # a silent partial restore would export random weights
    tf.train.Checkpoint(model=model).read(ckpt).expect_partial().assert_existing_objects_matched()
    # pixel ymin,xmin,ymax,xmax per level, as serving builds them; kept as numpy so they become
    # constants of the graph (a captured eager tensor would become a second ONNX input)
    anchors = {k: v.numpy()[None] for k, v in module._build_anchor_boxes().items()}
    image_shape = np.array([[input_size, input_size]], np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, input_size, input_size, 3], tf.uint8, name=INPUT_NAME)])
    def serve(images):
        x = tf.cast(images, tf.float32)  # raw 0..255 pixels; the normalisation lives in the graph
        x = preprocess_ops.normalize_image(x, offset=preprocess_ops.MEAN_RGB, scale=preprocess_ops.STDDEV_RGB)
        features = model.backbone(x, training=False)
        if model.decoder:
            features = model.decoder(features, training=False)
        raw_scores, raw_boxes, _ = model.head(features, training=False)
        out = model.detection_generator(raw_boxes, raw_scores, {k: tf.constant(v) for k, v in anchors.items()},
                                        tf.constant(image_shape))
        boxes = out["decoded_boxes"][:, :, 0, :]       # [1,N,4] ymin,xmin,ymax,xmax, clipped to the input
        scores = out["decoded_box_scores"]             # [1,N,K] sigmoid, background removed
        ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
        if model_type == "yolo-generic":
            cxcywh = tf.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin], axis=1)
            return {OUTPUT_NAME: tf.concat([cxcywh, tf.transpose(scores, [0, 2, 1])], axis=1)}
        best, cls = tf.reduce_max(scores[0], axis=-1), tf.argmax(scores[0], axis=-1)
        keep = tf.image.non_max_suppression(boxes[0], best, max_output_size=max_detections,
                                            iou_threshold=NMS_IOU_THRESHOLD, score_threshold=NMS_SCORE_THRESHOLD)
        kept = tf.gather(best, keep)
        keep = tf.gather(keep, tf.argsort(kept, direction="DESCENDING", stable=True))
        cols = [tf.gather(v[0], keep) for v in (xmin, ymin, xmax, ymax)]
        rows = tf.stack([tf.zeros_like(cols[0]), *cols, tf.gather(best, keep),
                         tf.cast(tf.gather(cls, keep), tf.float32)], axis=1)
        return {OUTPUT_NAME: rows}

    return serve


def convert(serve, out_path: str | Path, opset: int = OPSET) -> Path:
    """tf.function -> ONNX file (tf2onnx), written to `out_path`."""
    import tf2onnx

    out_path = Path(out_path)
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                                   opset=opset, output_path=None)
    out_path.write_bytes(model_proto.SerializeToString())
    return out_path


def frigate_info(input_size: int, label_names: list[str], supported: list[str], model_type: str) -> dict:
    """The Frigate model info of the ONNX file (publish adds id, name, dates and attributes)."""
    return {"type": model_type, "width": input_size, "height": input_size, "inputShape": "nhwc",
            "pixelFormat": "rgb", "inputDataType": "int",
            "labelMap": {str(i): n for i, n in enumerate(label_names)}, "supportedDetectors": supported}


def check_io(path: str | Path, input_size: int, num_classes: int, model_type: str) -> list[str]:
    """Problems of the ONNX file's I/O against the model type's contract (empty list = fine)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    consts = {i.name for i in graph.initializer}
    ins = [i for i in graph.input if i.name not in consts]

    def sig(v):
        t = v.type.tensor_type
        return onnx.TensorProto.DataType.Name(t.elem_type), [d.dim_value or d.dim_param for d in t.shape.dim]

    problems = []
    if model.ir_version > MAX_IR_VERSION:
        problems.append(f"ONNX IR version {model.ir_version}: Frigate's onnxruntime 1.22 reads <= {MAX_IR_VERSION}")
    if len(ins) != 1 or sig(ins[0]) != ("UINT8", [1, input_size, input_size, 3]):
        problems.append(f"input must be one uint8 [1,{input_size},{input_size},3], got {[sig(i) for i in ins]}")
    outs = [sig(o) for o in graph.output]
    if model_type == "yolonas":  # Frigate iterates the output's first axis: rows, 2-D
        ok = len(outs) == 1 and outs[0][0] == "FLOAT" and len(outs[0][1]) == 2 and outs[0][1][1] == 7
        want = "[rows,7]"
    else:
        ok = len(outs) == 1 and outs[0][0] == "FLOAT" and len(outs[0][1]) == 3 \
            and outs[0][1][:2] == [1, 4 + num_classes] and isinstance(outs[0][1][2], int)
        want = f"[1,{4 + num_classes},anchors]"
    if not ok:
        problems.append(f"{model_type} output must be one float32 {want}, got {outs}")
    return problems


def build(model_dir: str | Path, out_dir: str | Path, *, input_size: int, label_names: list[str],
          supported: list[str], model_type: str = "yolonas", max_detections: int = 25) -> Path:
    """Convert the tuned checkpoint to `out_dir/model.onnx` + `model.onnx.json` (its Frigate info)
    and check its I/O; ValueError on a contract breach."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    serve = detector_function(model_dir, input_size=input_size, model_type=model_type,
                              max_detections=max_detections)
    path = convert(serve, out_dir / "model.onnx")
    problems = check_io(path, input_size, len(label_names), model_type)
    if problems:
        raise ValueError(f"{path} breaks the {model_type} contract: " + "; ".join(problems))
    info = frigate_info(input_size, label_names, supported, model_type)
    (out_dir / "model.onnx.json").write_text(json.dumps(info, indent=2))
    return path
