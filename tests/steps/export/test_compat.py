"""The static Edge TPU compatibility check: on the exported detector and on small models that
break one rule each (an op Coral lacks, float tensors, a too-new op version, a dynamic batch)."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.steps.export import compat

# TFLiteConverter's uint8-input path always says this (the ranges come from calibration)
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")


def _tiny(tmp_path, name, body, *, int8=True, batch=1):
    """Convert `body` (a function of a [batch,16,16,3] float tensor) to TFLite."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([batch, 16, 16, 3], tf.float32)])
    def fn(x):
        return body(x)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    if int8:
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)]
                                               for _ in range(4))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(conv.convert())
    return path


def _conv(x):
    import tensorflow as tf

    w = tf.constant(np.random.default_rng(1).normal(size=(3, 3, x.shape[-1], 8)).astype(np.float32))
    return tf.nn.relu6(tf.nn.conv2d(x / 255.0, w, 1, "SAME"))


def test_exported_detector_maps_except_postprocessing(exported_model):
    r = compat.check(exported_model)
    assert r.subgraphs == 1 and not r.model_problems
    by_status = {}
    for c in r.ops:
        by_status.setdefault(c.status, []).append(c)
    # the whole MobileDet/FPN/head body maps: every conv is on the TPU
    convs = [c for c in r.ops if c.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs and all(c.status == "mapped" for c in convs)
    assert {"RESIZE_NEAREST_NEIGHBOR", "QUANTIZE"} <= {c.op for c in by_status["mapped"]}
    pp = [c for c in r.ops if c.op == compat.POSTPROCESS_OP]
    assert len(pp) == 1 and pp[0].status == "cpu_postprocess"
    # only the dequantize feeding the post-processing stops the mapping, right before it
    assert r.first_blocking["op"] == "DEQUANTIZE"
    assert r.first_blocking["index"] > max(c.index for c in convs)
    assert all(c.op == "DEQUANTIZE" for c in r.ops if c.status in ("blocking", "after_block"))
    assert r.mapped_ops / r.total_ops > 0.9 and r.fully_mapped_body
    md = compat.to_markdown(r)
    assert "first op that stops the mapping" in md and "TFLite_Detection_PostProcess" in md


def test_op_the_edge_tpu_lacks_blocks_everything_after_it(tmp_path):
    import tensorflow as tf

    path = _tiny(tmp_path, "tile", lambda x: _conv(tf.tile(_conv(x), [1, 2, 2, 1])))
    r = compat.check(path)
    assert r.first_blocking["op"] == "TILE" and "not supported" in r.first_blocking["reason"]
    names = [c.op for c in r.ops]
    tile = names.index("TILE")
    assert all(c.status == "mapped" for c in r.ops[:tile])
    assert all(c.status == "after_block" for c in r.ops[tile + 1:])
    assert r.ops[-1].op in ("CONV_2D", "QUANTIZE", "RELU6")  # supported, but after the cut
    assert not r.fully_mapped_body


def test_float_model_is_not_mappable(tmp_path):
    r = compat.check(_tiny(tmp_path, "float", _conv, int8=False))
    assert r.mapped_ops == 0
    assert "FLOAT32" in r.first_blocking["reason"]


def test_too_new_op_version_blocks(tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    path = _tiny(tmp_path, "conv", _conv)
    assert compat.check(path).first_blocking is None
    m = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    for code in m.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.CONV_2D:
            code.version = 6  # what TF 2.9+ emitted in google-coral/edgetpu#631
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    r = compat.check(path)
    assert r.first_blocking["op"] == "CONV_2D"
    assert "version not supported" in r.first_blocking["reason"]


def test_dynamic_batch_is_a_model_problem(tmp_path):
    r = compat.check(_tiny(tmp_path, "dyn", _conv, batch=None))
    assert any("batch" in p for p in r.model_problems) or (
        r.first_blocking and "dynamic" in r.first_blocking["reason"])
    assert not r.fully_mapped_body


@pytest.mark.parametrize("shape,ok", [([1, 40, 40, 64], True), ([1, 4, 2, 4, 2, 64], False)])
def test_rank_rule_only_three_inner_dims_may_exceed_one(shape, ok):
    t = {"name": "t", "type": "INT8", "shape": shape, "signature": shape, "const": False}
    reason = compat._op_problem("RESHAPE", 1, [t], [t])
    assert (reason == "") is ok
