"""Model Garden checkpoint -> a full-integer TFLite model with Frigate's I/O contract.

Two steps, both Model Garden's own machinery:
1. `export_saved_model_lib.export_inference_graph` with `input_type="tflite"` and a
   `DetectionModule` subclass (below) whose post-processing is Model Garden's
   `TFLite_Detection_PostProcess` composite (`detection_generator._generate_detections_tflite`,
   which the MLIR converter legalises to the custom op).
2. `tf.lite.TFLiteConverter` full-integer conversion calibrated on real images.

What the stock path gets wrong for Frigate, and what this module does instead (measured here):
- Model Garden's `int8_full` quant type sets `inference_output_type=uint8`: the post-processing
  outputs come out uint8. We leave the output type float32 (the custom op computes in float).
- The converter orders the TFLite outputs as its passes leave them (count first / classes first),
  whatever the signature says, and Frigate reads them BY POSITION. `finalize` rewrites the
  subgraph's output list from the signature names (boxes, classes, scores, count), and
  `check_frigate_io` reads the interpreter's output details back and refuses anything else.
- Model Garden feeds the custom op all K+1 class columns (column 0 = background), so class ids
  would come out 1..K beside a background "class 0". We drop the background column first: the op
  then reports 0-based label indices (Frigate's label index = model class - 1), like TF OD API SSDs.
- The op decodes boxes without clipping; `finalize` appends a float clip to [0, 1].
- FPN's default upsampling (reshape to 6-D + TILE) cannot run on the Edge TPU; the export builds
  the FPN with Model Garden's Keras UpSampling2D (RESIZE_NEAREST_NEIGHBOR), same weights.
- The input is raw RGB pixels; the mean/std normalisation is inside the graph, so with
  `inference_input_type=uint8` (scale 1, zero point 0, pinned by the calibration frames) Frigate's
  uint8 frame goes straight in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from camtune.model.checkpoint import latest_checkpoint, read_experiment
from camtune.model.preprocess import letterbox


# the serving signature's output names, in Frigate's positional order
OUTPUT_KEYS = ("output_0_boxes", "output_1_classes", "output_2_scores", "output_3_count")
# The float detector's pre-NMS threshold in Model Garden (DetectionGenerator.pre_nms_score_threshold);
# Frigate applies its own min_score on top.
NMS_SCORE_THRESHOLD = 0.05
NMS_IOU_THRESHOLD = 0.5


def _frigate_module_class():
    """Built lazily: importing Model Garden pulls in TensorFlow."""
    import tensorflow as tf
    from official.vision.modeling.layers import detection_generator
    from official.vision.ops import preprocess_ops
    from official.vision.serving import detection

    class FrigateDetectionModule(detection.DetectionModule):
        """Model Garden's detection export module, serving raw RGB pixels -> Frigate's 4 outputs."""

        def serve(self, images: tf.Tensor):
            model_cfg = self.params.task.model
            # in-graph normalisation: the TFLite input stays raw 0..255 pixels (uint8 after quant)
            x = preprocess_ops.normalize_image(images, offset=preprocess_ops.MEAN_RGB,
                                               scale=preprocess_ops.STDDEV_RGB)
            features = self.model.backbone(x, training=False)
            if self.model.decoder:
                features = self.model.decoder(features, training=False)
            raw_scores, raw_boxes, _ = self.model.head(features, training=False)
            k1 = model_cfg.num_classes
            fg_scores = {}
            for level, s in raw_scores.items():
                _, h, w, c = s.shape
                a = c // k1
                # [1,H,W,A*(K+1)] -> [1,H*W*A,K+1], drop background column 0 -> [1,H*W,A*K].
                # Kept at rank 3: the Edge TPU maps tensors whose non-1 dims are the 3 innermost.
                fg = tf.reshape(s, [1, h * w * a, k1])[:, :, 1:]
                fg_scores[level] = tf.reshape(fg, [1, h * w, a * (k1 - 1)])
            pp = model_cfg.detection_generator.tflite_post_processing.as_dict()
            pp["input_image_size"] = list(self._input_image_size)
            boxes, classes, scores, count = detection_generator._generate_detections_tflite(
                raw_boxes, fg_scores, self._build_anchor_boxes(), pp,
                model_cfg.detection_generator.box_coder_weights)
            return dict(zip(OUTPUT_KEYS, (boxes, classes, scores, count)))

    return FrigateDetectionModule


def export_saved_model(model_dir: str | Path, export_dir: str | Path, *, input_size: int,
                       max_detections: int, checkpoint: str | None = None) -> Path:
    """Model Garden serving export of the checkpoint with TFLite post-processing."""
    import tensorflow as tf
    from official.vision.serving import export_saved_model_lib

    exp = read_experiment(model_dir)
    ckpt = checkpoint or latest_checkpoint(model_dir)
    gen = exp.task.model.detection_generator
    gen.nms_version = "tflite"
    gen.tflite_post_processing.max_detections = max_detections
    gen.tflite_post_processing.max_classes_per_detection = 1  # one class per box, as Frigate reads it
    gen.tflite_post_processing.use_regular_nms = False
    gen.tflite_post_processing.nms_score_threshold = NMS_SCORE_THRESHOLD
    gen.tflite_post_processing.nms_iou_threshold = NMS_IOU_THRESHOLD
    # normalised anchors -> the op's decoded boxes are normalised ymin,xmin,ymax,xmax
    gen.tflite_post_processing.normalize_anchor_coordinates = True
    exp.task.model.input_size = [input_size, input_size, 3]
    if exp.task.model.decoder.type == "fpn":
        # FPN's default nearest upsampling is reshape-to-6D + TILE, which the Edge TPU cannot map
        # (it would cut the graph at the first FPN level); the Keras UpSampling2D twin is the
        # same function as RESIZE_NEAREST_NEIGHBOR and creates no variables, so the checkpoint
        # restores identically (the restore below asserts every variable matched).
        exp.task.model.decoder.fpn.use_keras_layer = True

    module = _frigate_module_class()(params=exp, batch_size=1,
                                     input_image_size=[input_size, input_size],
                                     input_type="tflite", num_channels=3)
    # the checkpoint must fill every model variable: a silent partial restore exports random weights
    status = tf.train.Checkpoint(model=module.model).read(ckpt)
    status.expect_partial().assert_existing_objects_matched()
    export_dir = Path(export_dir)
    export_saved_model_lib.export_inference_graph(
        input_type="tflite", batch_size=1, input_image_size=[input_size, input_size], params=exp,
        checkpoint_path=None, export_dir=str(export_dir), export_module=module)
    return export_dir


def convert(saved_model_dir: str | Path, representative: Callable[[], Iterator[np.ndarray]] | None) -> bytes:
    """SavedModel -> TFLite. With `representative` (a callable yielding float32 [1,S,S,3] raw-pixel
    frames): full integer, uint8 input, int8 body, float32 outputs. Without: the float reference."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([f] for f in representative())
        # integer-only kernels (what the Edge TPU needs); the post-processing custom op is allowed
        # through as a custom op and stays float on the CPU
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    converter.allow_custom_ops = True
    return finalize(converter.convert())


def finalize(model: bytes, keys: tuple[str, ...] = OUTPUT_KEYS) -> bytes:
    """Three edits of the converted flatbuffer (schema object API; weights and kernels untouched):

    1. Clip boxes to [0, 1]. The post-processing op decodes boxes without clipping and Frigate
       expects them inside the frame. A `tf.clip_by_value` in the graph gets int8-quantized by the
       converter with the calibrated range (measured: boxes capped at 0.87), so the clip is added
       here as float MAXIMUM(0) -> MINIMUM(1) (v1 builtins every TFLite runtime has) after the op.
    2. Move each DEQUANTIZE to just before its first consumer (still a valid topological order),
       so the Edge TPU compiler, which stops mapping at the first op it cannot run, is not stopped
       before the last quantized ops that feed the post-processing.
    3. Put the subgraph outputs in `keys` order (boxes, classes, scores, count). The converter
       orders them as its passes leave them (measured: classes, count, scores, boxes), whatever the
       signature says, and Frigate reads the outputs by position.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    if len(m.subgraphs) != 1 or not m.signatureDefs:
        raise ValueError(f"expected one subgraph with a signature, got {len(m.subgraphs)} subgraphs")
    sg, sig = m.subgraphs[0], m.signatureDefs[0]
    by_name = {_str(t.name): t for t in sig.outputs}
    if sorted(by_name) != sorted(keys):
        raise ValueError(f"signature outputs {sorted(by_name)} do not match {list(keys)}")

    def opcode(builtin: int) -> int:
        for i, c in enumerate(m.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin and c.version == 1:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
        m.operatorCodes.append(code)
        return len(m.operatorCodes) - 1

    def code_of(op) -> int:
        c = m.operatorCodes[op.opcodeIndex]
        return max(c.builtinCode, c.deprecatedBuiltinCode)

    # 2. sink DEQUANTIZE ops
    ops = list(sg.operators)
    for op in [o for o in ops if code_of(o) == schema.BuiltinOperator.DEQUANTIZE]:
        ops.remove(op)
        out = set(int(t) for t in op.outputs)
        first = next((i for i, o in enumerate(ops) if out & set(int(t) for t in o.inputs)), len(ops))
        ops.insert(first, op)

    # 1. clip boxes: boxes -> MAXIMUM(., 0) -> MINIMUM(., 1)
    boxes_map = by_name[keys[0]]
    boxes = boxes_map.tensorIndex
    producer = next(i for i, o in enumerate(ops) if boxes in [int(t) for t in o.outputs])

    def const(value: float, name: str) -> int:
        buf = schema.BufferT()
        buf.data = list(np.float32([value]).tobytes())
        m.buffers.append(buf)
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name = [1], schema.TensorType.FLOAT32, len(m.buffers) - 1, name
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def like_boxes(name: str) -> int:
        src = sg.tensors[boxes]
        t = schema.TensorT()
        t.shape = list(src.shape) if src.shape is not None else []
        t.shapeSignature = list(src.shapeSignature) if src.shapeSignature is not None else None
        t.type, t.buffer, t.name = schema.TensorType.FLOAT32, 0, name
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    lo, hi = const(0.0, "camtune/clip_min"), const(1.0, "camtune/clip_max")
    mid, clipped = like_boxes("camtune/boxes_ge0"), like_boxes("camtune/boxes_clipped")
    new_ops = []
    for builtin, ins, out in ((schema.BuiltinOperator.MAXIMUM, [boxes, lo], mid),
                              (schema.BuiltinOperator.MINIMUM, [mid, hi], clipped)):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = opcode(builtin), ins, [out]
        op.builtinOptionsType = schema.BuiltinOptions.MaximumMinimumOptions
        op.builtinOptions = schema.MaximumMinimumOptionsT()
        new_ops.append(op)
    ops[producer + 1:producer + 1] = new_ops
    sg.operators = ops
    boxes_map.tensorIndex = clipped

    # 3. outputs by position
    order = [by_name[k].tensorIndex for k in keys]
    sg.outputs = order
    sig.outputs = [by_name[k] for k in keys]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def io_details(model: bytes | str | Path) -> dict:
    """Input/output details as the interpreter reports them (what Frigate sees), JSON-friendly."""
    from ai_edge_litert.interpreter import Interpreter

    interp = (Interpreter(model_content=model) if isinstance(model, bytes)
              else Interpreter(model_path=str(model)))
    interp.allocate_tensors()  # the custom op's output shapes are known only after allocation

    def one(d):
        return {"name": d["name"], "dtype": np.dtype(d["dtype"]).name,
                "shape": [int(v) for v in d["shape"]],
                "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]}

    return {"inputs": [one(d) for d in interp.get_input_details()],
            "outputs": [one(d) for d in interp.get_output_details()]}


def check_frigate_io(details: dict, input_size: int, max_detections: int, *, int8: bool = True) -> list[str]:
    """Problems with the model's I/O against the Frigate contract (empty list = fine)."""
    problems = []
    ins, outs = details["inputs"], details["outputs"]
    want_in = "uint8" if int8 else "float32"
    if len(ins) != 1 or ins[0]["dtype"] != want_in or ins[0]["shape"] != [1, input_size, input_size, 3]:
        problems.append(f"input must be one {want_in} [1,{input_size},{input_size},3], got "
                        f"{[(d['dtype'], d['shape']) for d in ins]}")
    if int8 and ins and ins[0]["dtype"] == "uint8":
        scale, zero = ins[0]["quantization"]
        if abs(scale - 1.0) > 1e-6 or zero != 0:
            problems.append(f"uint8 input must be raw pixels (scale 1, zero point 0), got scale {scale}, "
                            f"zero point {zero}")
    want = [[1, max_detections, 4], [1, max_detections], [1, max_detections], [1]]
    got = [d["shape"] for d in outs]
    if got != want or any(d["dtype"] != "float32" for d in outs):
        problems.append(f"outputs must be float32 boxes {want[0]}, classes {want[1]}, scores {want[2]}, "
                        f"count {want[3]} in that order, got {[(d['dtype'], d['shape']) for d in outs]}")
    return problems


def representative_frames(images: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Calibration frames exactly as the model is fed: letterboxed uint8 RGB -> float32 [1,S,S,3].

    The converter derives the uint8 input's scale/zero point from the calibrated input range, and
    Frigate feeds raw 0..255 pixels: a range of, say, [3, 250] would silently rescale every frame.
    So the first frame carries one black and one white pixel, pinning the input to scale 1, zero
    point 0 (checked in `check_frigate_io`); two pixels do not move any other activation range.
    """
    for i, image in enumerate(images):
        frame, _, _ = letterbox(image, size, size)
        if i == 0:
            frame = frame.copy()
            frame[0, 0], frame[0, 1] = 0, 255
        yield frame[None].astype(np.float32)


def region_crops(items: Iterable[tuple[np.ndarray, list]], size: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Calibration inputs as Frigate feeds them: for each (uint8 RGB image, tracked boxes xyxy),
    the square regions around its objects, plus one motion-like region (objects or not: Frigate's
    motion regions are mostly background), each resized to size x size (`camtune.model.regions`)."""
    from camtune.model import regions as R

    min_size = R.min_region_size(size)
    for k, (image, boxes) in enumerate(items):
        shape = image.shape[:2]
        regs = R.object_regions(shape, boxes, min_size) if boxes else []
        side = float(np.median([max(b[2] - b[0], b[3] - b[1]) for b in boxes])) if boxes else min_size / 4
        regs += R.motion_regions(shape, min_size, side, 1, seed=seed + k)[:1]
        for r in regs:
            yield R.crop_region(image, r, size)


def calibration_paths(datasets, n: int, seed: int = 0) -> list[Path]:
    """Up to `n` image files drawn evenly from (dataset, image_ids) pairs (the user's and replay
    images), reproducibly."""
    pools = []
    for ds, ids in datasets:
        ids = sorted(int(i) for i in ids)
        names = ds.images.set_index("id").loc[ids, "file_name"] if len(ids) else []
        pools.append([ds.image_path(n) for n in names])
    rng = np.random.default_rng(seed)
    out: list[Path] = []
    share = max(1, n // max(1, len(pools)))
    for pool in pools:
        idx = rng.permutation(len(pool))[:share]
        out += [pool[i] for i in sorted(idx)]
    if len(out) < n:  # one pool was small: top up from the others
        rest = [p for pool in pools for p in pool if p not in set(out)]
        out += [rest[i] for i in rng.permutation(len(rest))[: n - len(out)]]
    return out[:n]
