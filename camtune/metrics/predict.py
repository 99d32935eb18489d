"""Run a detector (`camtune.model.checkpoint.Detector` or `camtune.model.tflite.TFLiteDetector`,
same interface) over a dataset's images; shards so an orchestrator can fan the work out."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from camtune.core.dataset import Dataset
from camtune.core.errors import StepFailed
from camtune.model.images import load_rgb


def check_dataset_labels(ds: Dataset, label_names: Sequence[str]) -> None:
    """Boxes of a label the model cannot predict would silently vanish from the ground truth."""
    used = set(ds.annotations["label"].dropna())
    unknown = sorted(used - set(label_names))
    if unknown:
        ids = ds.annotations.loc[ds.annotations["label"].isin(unknown), "id"].head(5).tolist()
        raise StepFailed(f"{ds.annotations_path}: the evaluation set has labels the model does not know: "
                         f"{unknown} (annotation ids {ids}...)")
    if ds.annotations["label"].isna().any():
        ids = ds.annotations.loc[ds.annotations["label"].isna(), "id"].head(5).tolist()
        raise StepFailed(f"{ds.annotations_path}: annotations {ids} have a category_id with no category")


def shards(image_ids: Sequence[int], n: int) -> list[list[int]]:
    """Split ids into at most n contiguous, non-empty shards (order kept)."""
    ids = [int(i) for i in image_ids]
    n = max(1, min(n, len(ids))) if ids else 1
    return [part.tolist() for part in np.array_split(np.asarray(ids, dtype="int64"), n) if len(part)]


def predict_dataset(detector, ds: Dataset, image_ids: Sequence[int] | None = None,
                    batch_size: int = 8) -> dict[int, dict]:
    """{image_id: {"boxes", "classes", "scores"}} for the given images (default: all of ds).
    Images are batched only with images of the same size (NHWC batches are rectangular)."""
    rows = ds.images if image_ids is None else ds.images[ds.images["id"].isin(list(image_ids))]
    out: dict[int, dict] = {}
    batch: list[tuple[int, np.ndarray]] = []

    def flush():
        if not batch:
            return
        preds = detector.predict(np.stack([img for _, img in batch]))
        if len(preds) != len(batch):
            raise StepFailed(f"detector returned {len(preds)} results for {len(batch)} images")
        for (iid, _), p in zip(batch, preds):
            out[iid] = {k: np.asarray(p[k]).tolist() for k in ("boxes", "classes", "scores")}
        batch.clear()

    for r in rows.itertuples():
        img = load_rgb(ds.image_path(r.file_name))
        if batch and (img.shape != batch[0][1].shape or len(batch) >= batch_size):
            flush()
        batch.append((int(r.id), img))
    flush()
    return out
