"""One model (a Model Garden model_dir, a TFLite or ONNX file) scored on one dataset, the way the
gate scores it: COCO metrics (`score_model`), the Frigate path (`score_frigate_path`), and the
per-shard pieces evaluate fans out (`predict_images`, `frigate_images`). Export's int8 fidelity
check scores through here too, so both judge a model with one scorer."""
from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Callable, Literal, Sequence

from camtune.core.dataset import Dataset, load_dataset
from camtune.metrics import bootstrap, frigate_path
from camtune.metrics.coco import evaluate_with_matches
from camtune.metrics.predict import predict_dataset

# "onnx" / "openvino": an exported ONNX model run as Frigate's onnx (onnxruntime) / openvino detector
ModelKind = Literal["checkpoint", "tflite", "onnx", "openvino"]


def _version(path: str) -> tuple:
    """What identifies a file's or folder's content cheaply: its files' sizes and mtimes (a model
    retrained in the same folder in the same process must not be served from the cache)."""
    p = Path(path)
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


@functools.lru_cache(maxsize=4)
def _detector(kind: ModelKind, path: str, version: tuple, num_threads: int):
    """One detector per process and model version (a Dask worker loads its own); a lock serialises
    predict calls of threads sharing it (tf.function tracing is not meant to race)."""
    if kind == "tflite":
        from camtune.model.tflite import TFLiteDetector

        det = TFLiteDetector(path, num_threads=num_threads)
    elif kind in ("onnx", "openvino"):
        from camtune.model.onnx import ONNXDetector

        det = ONNXDetector(path, runtime="onnxruntime" if kind == "onnx" else "openvino",
                           num_threads=num_threads)
    else:
        from camtune.model.checkpoint import load_detector

        det = load_detector(path)
    return det, threading.Lock()


@functools.lru_cache(maxsize=4)
def _dataset(source: str, version: tuple) -> Dataset:
    return load_dataset(source)


def _cached_detector(kind: ModelKind, model: str | Path, num_threads: int = 2):
    return _detector(kind, str(model), _version(str(model)), num_threads)


def predict_images(kind: ModelKind, model: str | Path, source: str | Path, image_ids: Sequence[int],
                   batch_size: int = 8) -> dict[int, dict]:
    """Detections of one model on some images of a dataset folder: {image_id: {boxes, classes,
    scores}}. Models and datasets are cached per process, so shards of one set reuse them."""
    det, lock = _cached_detector(kind, model)
    source = str(source)
    ds = _dataset(source, _version(str(Path(source) / "annotations.json"))).subset(list(image_ids))
    with lock:
        return predict_dataset(det, ds, batch_size=batch_size)


# (kind, model, dataset) -> detections; the flow passes one that fans shards out as Prefect tasks
Predict = Callable[[ModelKind, Path, Dataset], dict]


def _frigate_runs(det, ds: Dataset, label_names: Sequence[str], attribute_labels: Sequence[str],
                  motion_boxes: int) -> list[frigate_path.ImageRun]:
    if hasattr(det, "detect_raw"):   # TFLite/ONNXDetector: one region per invoke, like Frigate's detectors
        size, run = det.height, frigate_path.tflite_runner(det)
    else:
        size, run = det.input_size[0], frigate_path.checkpoint_runner(det)
    runs = frigate_path.set_regions(ds, size, attribute_labels, motion_boxes)
    return frigate_path.run_model(runs, ds, run, size, label_names)


def frigate_images(kind: ModelKind, model: str | Path, source: str | Path, image_ids: Sequence[int],
                   label_names: Sequence[str], attribute_labels: Sequence[str], motion_boxes: int = 2
                   ) -> list[dict]:
    """The Frigate path of one model on some images of a dataset folder: per image its regions and
    the detections Frigate's detector hands on from them (`frigate_path.ImageRun` dicts)."""
    det, lock = _cached_detector(kind, model)
    source = str(source)
    ds = _dataset(source, _version(str(Path(source) / "annotations.json"))).subset(list(image_ids))
    with lock:
        return [r.as_dict() for r in _frigate_runs(det, ds, label_names, attribute_labels, motion_boxes)]


def score_frigate_path(kind: ModelKind, model: str | Path, ds: Dataset, label_names: Sequence[str],
                       attribute_labels: Sequence[str], min_score: float = 0.5, motion_boxes: int = 2) -> dict:
    """Frigate-path figures of one model on one dataset at one min_score (`frigate_path.summarize`):
    the same path the gate judges, for anyone who needs "what would Frigate detect with this"."""
    det, lock = _cached_detector(kind, model)
    with lock:
        runs = _frigate_runs(det, ds, label_names, attribute_labels, motion_boxes)
    return frigate_path.summarize(runs, label_names, attribute_labels, min_score)


# (kind, model, dataset[, labels=the model's label map]) -> Frigate-path runs; the flow passes one
# that fans shards out
FrigateRuns = Callable[..., list]


def frigate_here(label_names: Sequence[str], attribute_labels: Sequence[str], motion_boxes: int) -> FrigateRuns:
    def run(kind: ModelKind, model: Path, ds: Dataset, labels: Sequence[str] | None = None) -> list:
        # `labels`: the model's own label map when it is not ours (an incumbent, matched by name later)
        det, lock = _cached_detector(kind, model)
        with lock:
            return _frigate_runs(det, ds, labels or label_names, attribute_labels, motion_boxes)
    return run



def predict_here(batch_size: int) -> Predict:
    def predict(kind: ModelKind, model: Path, ds: Dataset) -> dict:
        det, lock = _cached_detector(kind, model)
        with lock:
            return predict_dataset(det, ds, batch_size=batch_size)
    return predict


def score_model(kind: ModelKind, model: str | Path, ds: Dataset, label_names: Sequence[str], *,
                predict: Predict | None = None, slices: bool = True, curves: bool = True,
                batch_size: int = 8) -> dict:
    """COCO metrics (pycocotools) of one model on one dataset, as `evaluate_detections` returns
    them: the same scorer the gate uses, for anyone who needs "how good is this model on this set"."""
    return score_with_matches(kind, model, ds, label_names, predict=predict, slices=slices, curves=curves,
                              batch_size=batch_size)[0]


def score_with_matches(kind: ModelKind, model: str | Path, ds: Dataset, label_names: Sequence[str], *,
                       predict: Predict | None = None, slices: bool = True, curves: bool = True,
                       batch_size: int = 8) -> tuple[dict, bootstrap.CocoMatches]:
    """`score_model` and the per-image matches of the same COCOeval run (the gate bootstraps them)."""
    detections = (predict or predict_here(batch_size))(kind, Path(model), ds)
    return evaluate_with_matches(ds, detections, list(label_names), slices=slices, curves=curves)
