"""The ONNX model of the session's real export (320x320, tests/support/export.py), loaded with the
runtimes Frigate uses, the way its `onnx` and `openvino` detectors do: the file under an
extension-less model_cache name with `<id>.json` beside it, the input built from that JSON (layout,
dtype, pixel format), the output read by Frigate's rules for the JSON's model type."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from camtune.model import onnx as O


@pytest.fixture(scope="module")
def model_cache(export_run, tmp_path_factory):
    """model_cache/<id> + <id>.json, as publish --install-to lays them out."""
    cache = tmp_path_factory.mktemp("model_cache")
    shutil.copyfile(export_run.out / "model.onnx", cache / "u-onnx")
    shutil.copyfile(export_run.out / "model.onnx.json", cache / "u-onnx.json")
    return cache / "u-onnx"


def _region(sample_datasets, size):
    """A Frigate-style square region of a real camera image, resized to the model input."""
    import cv2

    from camtune.core.dataset import load_dataset
    from camtune.model.images import load_rgb

    ds = load_dataset(sample_datasets.user)
    img = load_rgb(ds.image_path(ds.images["file_name"].iloc[0]))
    return cv2.resize(img[:, :img.shape[0]], (size, size), interpolation=cv2.INTER_LINEAR)[None]


def _frigate_onnx(path, tensor):
    """frigate/detectors/plugins/onnx.py on a CPU box: an onnxruntime session, CPU provider, fed by
    its first input's name."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tensor})


def _frigate_openvino(path, tensor):
    """frigate/detectors/plugins/openvino.py: compile_model on the file path, one preallocated input
    tensor of the input's element type, every output read back."""
    import openvino as ov

    compiled = ov.Core().compile_model(model=str(path), device_name="CPU")
    request = compiled.create_infer_request()
    port = compiled.inputs[0]
    t = ov.Tensor(port.get_element_type(), port.get_shape())
    np.copyto(t.data, tensor)
    request.infer(t)
    return [request.get_output_tensor(i).data.copy() for i in range(len(compiled.outputs))]


def test_model_info_is_frigates(export_run, model_cache):
    info = json.loads(model_cache.with_name("u-onnx.json").read_text())
    names = list(export_run.params.labels.names)
    assert info == {"type": "yolonas", "width": 320, "height": 320, "inputShape": "nhwc", "pixelFormat": "rgb",
                    "inputDataType": "int", "labelMap": {str(i): n for i, n in enumerate(names)},
                    "supportedDetectors": ["onnx", "openvino"]}
    from camtune.steps.export import to_onnx as X
    assert X.check_io(model_cache, 320, len(names), "yolonas") == []


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_frigate_loads_and_reads_the_onnx_model(export_run, sample_datasets, model_cache, runtime):
    info = O.read_model_info(model_cache)
    frame = _region(sample_datasets, info["width"])
    tensor = O.frigate_input(frame, info)
    assert tensor.dtype == np.uint8 and tensor.shape == (1, 320, 320, 3)   # int, nhwc: the frame as is
    outputs = (_frigate_onnx if runtime == "onnx" else _frigate_openvino)(model_cache, tensor)
    assert len(outputs) == 1
    flat = outputs[0]
    n = export_run.params.export.max_detections
    # yolonas flat: [rows, 7] (batch, x_min, y_min, x_max, y_max, score, class) in input pixels, best first
    assert flat.ndim == 2 and flat.shape[1] == 7 and 0 < flat.shape[0] <= n
    assert np.all(flat[:, 0] == 0) and np.all(np.diff(flat[:, 5]) <= 0)
    assert np.all((flat[:, 1:5] >= 0) & (flat[:, 1:5] <= 320))
    assert np.all(flat[:, 1] <= flat[:, 3]) and np.all(flat[:, 2] <= flat[:, 4])
    cls = flat[:, 6]
    assert np.all(cls == np.round(cls)) and cls.min() >= 0 and cls.max() < len(info["labelMap"])

    rows = O.yolonas_rows(flat, info["width"], info["height"])
    k = min(20, len(flat))
    assert rows[:k, 1].tolist() == flat[:k, 5].tolist() and np.all(rows[k:] == 0)
    assert np.all((rows[:k, 2:] >= 0) & (rows[:k, 2:] <= 1))
    # the detector class gives the same rows, and both runtimes agree
    det = O.ONNXDetector(model_cache, runtime="onnxruntime" if runtime == "onnx" else "openvino")
    assert np.allclose(det.detect_rows(frame), rows, atol=1e-5)


def test_both_runtimes_agree_with_the_tensorflow_graph(export_run, sample_datasets, tmp_path):
    """The converted network computes what Model Garden's graph computes. Compared before any NMS
    (the yolo-generic output: every anchor's box and scores): the untrained test model's scores tie
    to 1e-6, so which of two tied boxes an NMS keeps is float noise."""
    from camtune.steps.export import to_onnx as X

    model_dir, names = export_run.root / "artifacts/finetune/model", list(export_run.params.labels.names)
    path = X.build(model_dir, tmp_path, input_size=320, label_names=names, supported=["onnx"],
                   model_type="yolo-generic")
    assert X.check_io(path, 320, len(names), "yolo-generic") == []
    frame = _region(sample_datasets, 320)
    want = X.detector_function(model_dir, input_size=320, model_type="yolo-generic")(frame)[X.OUTPUT_NAME].numpy()
    assert want.shape[:2] == (1, 4 + len(names))
    for run in (_frigate_onnx, _frigate_openvino):
        got = run(path, frame)[0]
        assert got.shape == want.shape
        assert np.abs(got[:, :4] - want[:, :4]).max() < 1e-2        # pixels
        assert np.abs(got[:, 4:] - want[:, 4:]).max() < 1e-4        # scores
    rows = O.ONNXDetector(path).detect_rows(frame)                  # and Frigate's reading of it
    assert np.all(np.diff(rows[:, 1]) <= 0)


def test_a_model_whose_json_does_not_match_it_is_refused(model_cache, tmp_path, sample_datasets):
    bad = tmp_path / "u-onnx"
    shutil.copyfile(model_cache, bad)
    info = json.loads(model_cache.with_name("u-onnx.json").read_text())
    bad.with_name("u-onnx.json").write_text(json.dumps({**info, "inputShape": "nchw"}))
    det = O.ONNXDetector(bad)
    with pytest.raises(Exception, match="(?i)invalid dimensions|got invalid|index"):
        det.detect_rows(_region(sample_datasets, 320))


def test_a_target_losing_recall_is_refused_naming_target_and_figures(export_run, sample_datasets, model_cache):
    """The fidelity check of a target against a float reference it cannot match (recall 1.0, no
    drop allowed): refused on each runtime, naming the target, runtime, set and both figures."""
    from camtune.core.dataset import load_dataset
    from camtune.steps.export import fidelity

    params = export_run.params
    user = load_dataset(sample_datasets.user).verified()
    ds = user.subset(sorted(user.images["id"].tolist())[:3])
    ref = {"sets": {"user_holdout": {"frigate": {"min_score": 0.5, "float_recall": 1.0, "int8_recall": 1.0,
                                                 "float_false_per_100_regions": 0.0}}}}
    for runtime in ("onnx", "openvino"):
        got = fidelity.check_target("onnx", runtime, model_cache, {"user_holdout": ds}, ref,
                                    list(params.labels.names), attribute_labels=list(params.labels.attribute_parents),
                                    max_frigate_recall_drop=0.0)
        r = got["sets"]["user_holdout"]
        assert not got["passed"] and r["recall"] < 1.0 and r["regions"] >= 3
        assert got["failures"] == [
            f"onnx on {runtime}, user_holdout: Frigate-path recall {r['recall']:.4f} vs float 1.0000 at min_score 0.5 "
            f"(drop {r['recall_drop']:.4f} > export.max_frigate_recall_drop 0.0)"]
