"""Model Garden checkpoint -> an ONNX model Frigate's `onnx` and `openvino` detectors load as-is.

The contract is Frigate's `yolo-generic` model type (docs/detectors.md says why): one uint8 NHWC
input of raw RGB pixels (`inputDataType: int`, the same frame the `.tflite` takes) and one float32
output `[1, 4 + K, N]`: for each of the N anchors its decoded box as `cx, cy, w, h` in input pixels
and the K foreground class scores (sigmoid; background dropped). There is no NMS in the graph:
Frigate keeps anchors whose best class score is over 0.4 and runs its own NMS (see
`camtune.model.onnx`).

The graph is Model Garden's own: backbone, decoder and head of the restored checkpoint, anchors from
the serving module, boxes decoded by the model's `detection_generator` with NMS off. tf2onnx turns
that tf.function into ONNX; nothing of the network is rewritten by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from camtune.model.checkpoint import latest_checkpoint, read_experiment

# ONNX opset: 17 loads in onnxruntime >= 1.13 and every OpenVINO since 2023 (Frigate 0.17 ships
# onnxruntime 1.22 and OpenVINO 2025.4).
OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "output0"
MODEL_TYPE = "yolo-generic"


def yolo_generic_function(model_dir: str | Path, *, input_size: int, checkpoint: str | None = None):
    """The tuned model as a tf.function uint8 [1,S,S,3] raw RGB -> float32 [1, 4+K, N]."""
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
        cxcywh = tf.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin], axis=1)
        return {OUTPUT_NAME: tf.concat([cxcywh, tf.transpose(scores, [0, 2, 1])], axis=1)}

    return serve


def convert(serve, out_path: str | Path, opset: int = OPSET) -> Path:
    """tf.function -> ONNX file (tf2onnx), written to `out_path`."""
    import tf2onnx

    out_path = Path(out_path)
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                                   opset=opset, output_path=None)
    out_path.write_bytes(model_proto.SerializeToString())
    return out_path


def frigate_info(input_size: int, label_names: list[str], supported: list[str]) -> dict:
    """The Frigate model info of the ONNX file (publish adds id, name, dates and attributes)."""
    return {"type": MODEL_TYPE, "width": input_size, "height": input_size, "inputShape": "nhwc",
            "pixelFormat": "rgb", "inputDataType": "int",
            "labelMap": {str(i): n for i, n in enumerate(label_names)}, "supportedDetectors": supported}


def check_io(path: str | Path, input_size: int, num_classes: int) -> list[str]:
    """Problems of the ONNX file's I/O against the yolo-generic contract (empty list = fine)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    consts = {i.name for i in graph.initializer}
    ins = [i for i in graph.input if i.name not in consts]

    def sig(v):
        t = v.type.tensor_type
        return onnx.TensorProto.DataType.Name(t.elem_type), [d.dim_value or d.dim_param for d in t.shape.dim]

    problems = []
    if len(ins) != 1 or sig(ins[0]) != ("UINT8", [1, input_size, input_size, 3]):
        problems.append(f"input must be one uint8 [1,{input_size},{input_size},3], got {[sig(i) for i in ins]}")
    outs = list(graph.output)
    if len(outs) != 1 or sig(outs[0])[0] != "FLOAT" or sig(outs[0])[1][:2] != [1, 4 + num_classes] \
            or not isinstance(sig(outs[0])[1][2], int) or len(sig(outs[0])[1]) != 3:
        problems.append(f"output must be one float32 [1,{4 + num_classes},anchors], got {[sig(o) for o in outs]}")
    return problems


def build(model_dir: str | Path, out_dir: str | Path, *, input_size: int, label_names: list[str],
          supported: list[str]) -> Path:
    """Convert the tuned checkpoint to `out_dir/model.onnx` + `model.onnx.json` (its Frigate info)
    and check its I/O; ValueError on a contract breach."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = convert(yolo_generic_function(model_dir, input_size=input_size), out_dir / "model.onnx")
    problems = check_io(path, input_size, len(label_names))
    if problems:
        raise ValueError(f"{path} breaks the yolo-generic contract: " + "; ".join(problems))
    (out_dir / "model.onnx.json").write_text(json.dumps(frigate_info(input_size, label_names, supported), indent=2))
    return path
