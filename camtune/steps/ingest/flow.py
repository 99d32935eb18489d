"""ingest: data in. One Prefect flow per subcommand, one shared CLI:

  camtune ingest frigate --url http://frigate:5000 [--after 2026-10-01] [--cameras a,b] [--labels person,car]
  camtune ingest suggest [--model path/to/model.tflite]
  camtune ingest export-ls | export-cvat
  camtune ingest import-ls FILE [--format json|coco]
  camtune ingest import-cvat FILE --job-completed
  camtune ingest_public --annotations instances_train2017.json --images train2017   (camtune/steps/ingest_public/flow.py)

Every subcommand reads `params.yaml` (section `ingest`, plus data.user_dataset, labels, user) and
takes the common `--params` / `--set key=value`. Reports go to `ingest.out_dir`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from camtune.core import atomic, config
from camtune.steps.ingest import IngestError, dvc_hint, load_coco, save_coco
from camtune.steps.ingest import cvat, label_studio, review, tool_files


def _dataset(params: config.Params, create: bool = False) -> tuple[Path, dict]:
    root = Path(params.data.user_dataset)
    return root, load_coco(root, list(params.labels.names), dict(params.labels.attribute_parents), create=create)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _write_report(params: config.Params, name: str, report: dict) -> Path:
    path = Path(params.ingest.out_dir) / name
    atomic.write_json(path, report)
    return path


# ------------------------------------------------------------------ frigate

@task(name="import-frigate-events", cache_policy=NO_CACHE)
def import_events(params: config.Params, url: str | None, after: str | None, cameras: list[str],
                  labels: list[str], username: str | None, progress: bool) -> dict:
    from camtune.steps.ingest import frigate as fr
    from camtune.model.images import Limits

    fp = params.ingest.frigate
    client = fr.client_from_params(fp, url, username)
    opts = fr.ImportOptions(
        user_id=params.user.id, label_names=tuple(params.labels.names),
        attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
        after=fr.to_unix(after if after is not None else fp.after), cameras=tuple(cameras or fp.cameras),
        labels=tuple(labels or fp.labels), page_size=fp.page_size, batch_size=fp.batch_size,
        workers=fp.workers, store=fp.store_format, jpeg_quality=fp.jpeg_quality, progress=progress,
        limits=Limits.of(params.validate), refused_path=str(Path(params.ingest.out_dir) / "frigate_refused.json"))
    return fr.import_frigate(client, params.data.user_dataset, opts)


@flow(name="ingest_frigate")
def ingest_frigate(params_path: str = "params.yaml", overrides: dict | None = None, url: str | None = None,
                   after: str | None = None, cameras: str | None = None, labels: str | None = None,
                   username: str | None = None, progress: bool = True) -> dict:
    """Import the user's Frigate events with a clean snapshot into data.user_dataset (unverified)."""
    params = config.load(params_path, overrides)
    counts = import_events(params, url, after, _csv(cameras), _csv(labels), username, progress)
    report = _write_report(params, "frigate_import.json", counts)
    dropped = ", ".join(f"{k} x{v}" for k, v in counts["dropped_unmapped"].items()) or "none"
    msg = (f"frigate: {counts['imported']} new images ({counts['boxes']} boxes, {counts['attribute_boxes']} "
           f"attribute boxes), {counts['already_imported']} already imported, unmapped labels dropped: {dropped}, "
           f"without snapshot: {sum(counts['no_snapshot'].values())}, unusable: {len(counts['bad_events'])}, "
           f"refused: {len(counts['refused'])} (each named in the report; {counts['refused_before']} refused "
           f"earlier, not asked again); "
           f"report {report}")
    get_run_logger().info(msg)
    if counts["imported"]:
        get_run_logger().info(dvc_hint(params.data.user_dataset))
    create_markdown_artifact(key="frigate-import", markdown=f"```\n{json.dumps(counts, indent=2)}\n```",
                             description=msg)
    return counts


def frigate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Frigate base URL (default: ingest.frigate.url)")
    p.add_argument("--after", help="only events after this date/time (2026-10-01, ISO 8601 or unix seconds)")
    p.add_argument("--cameras", help="comma-separated camera names (default: all)")
    p.add_argument("--labels", help="comma-separated Frigate labels (default: all)")
    p.add_argument("--username", help="login for the authenticated port; password in CAMTUNE_FRIGATE_PASSWORD")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


# ------------------------------------------------------------------ suggest

@flow(name="ingest_suggest")
def ingest_suggest(params_path: str = "params.yaml", overrides: dict | None = None, model: str | None = None,
                   progress: bool = True) -> dict:
    """Pre-annotate the unverified images with our model and rank them for review."""
    from camtune.model.tflite import TFLiteDetector
    from camtune.steps.ingest import suggest as sg

    if model:
        overrides = {**(overrides or {}), "ingest.suggest.model": model}
    params = config.load(params_path, overrides)
    sp = params.ingest.suggest
    root, coco = _dataset(params)
    out = Path(params.ingest.out_dir)
    model_path, version, filters = sg.resolve_model(params, out / "models")
    detector = TFLiteDetector(model_path)
    names = tuple(detector.label_names or params.labels.names)
    from camtune.model.images import Limits
    new, ranking, counts = sg.suggest(root, coco, detector, names, sp, sg.read_thresholds(filters), progress=progress,
                                      limits=Limits.of(params.validate))
    for s in counts["skipped"]:
        get_run_logger().warning("suggest: image %s (%s) skipped: %s", s["image_id"], s["file"], s["reason"])
    save_coco(root, coco, new)
    atomic.write_json(out / "ranking.json", {"model": version, "ranking": ranking})
    md = sg.report_markdown(ranking, counts, version)
    atomic.write_text(out / "suggestions.md", md)
    create_markdown_artifact(key="ingest-suggestions", markdown=md, description="images ranked for review")
    get_run_logger().info("suggest: %d unverified images, %d suggested boxes by %s; ranked list in %s",
                          counts["images"], counts["suggested_boxes"], version, out / "ranking.json")
    return {**counts, "model": version}


def suggest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="a TFLite model (default: ingest.suggest.model, else the newest published)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


# ------------------------------------------------------------------ export

def _ranking(params: config.Params) -> tuple[list[dict] | None, str]:
    path = Path(params.ingest.out_dir) / "ranking.json"
    if not path.is_file():
        return None, "frigate"
    doc = json.loads(path.read_text())
    return doc.get("ranking"), f"frigate+{doc.get('model')}"


@flow(name="ingest_export")
def ingest_export(params_path: str = "params.yaml", overrides: dict | None = None, tool: str = "label_studio",
                  out: str | None = None) -> dict:
    """Write the unverified images, priority first, for Label Studio or CVAT."""
    params = config.load(params_path, overrides)
    tp = params.ingest.tools
    root, coco = _dataset(params)
    ranking, version = _ranking(params)
    images = tool_files.selection(coco, ranking, tp.max_images)
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    log = get_run_logger()
    if tool == "label_studio":
        out_dir = Path(out or Path(tp.export_dir) / "label_studio")
        label_studio.write_ls_export(root, coco, images, ranking, out_dir, model_version=version,
                                     url_prefix=tp.ls_image_url_prefix, document_root=tp.ls_document_root,
                                     label_names=names, attribute_parents=parents)
        log.info("export-ls: %d tasks in %s (labeling config: %s)", len(images), out_dir / "tasks.json",
                 out_dir / "labeling_config.xml")
    elif tool == "cvat":
        out_dir = Path(out or Path(tp.export_dir) / "cvat")
        cvat.write_cvat_export(root, coco, images, out_dir, names, parents)
        log.info("export-cvat: %d images in %s, COCO 1.0 annotations %s (labels: %s)", len(images),
                 out_dir / "images", out_dir / "coco_1.0_annotations.zip", out_dir / "cvat_labels.json")
    else:
        raise config.ConfigError(f"unknown tool {tool!r}: label_studio or cvat")
    return {"tool": tool, "images": len(images), "out": str(out_dir)}


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output folder (default: ingest.tools.export_dir/<tool>)")


# ------------------------------------------------------------------ import back

@flow(name="ingest_import")
def ingest_import(params_path: str = "params.yaml", overrides: dict | None = None, tool: str = "label_studio",
                  file: str = "", format: str = "json", job_completed: bool = False) -> dict:
    """A tool's export back in: done images become verified with exactly the tool's boxes."""
    params = config.load(params_path, overrides)
    root, coco = _dataset(params)
    names = list(params.labels.names)
    export = review.read_export(file, max_bytes=params.validate.max_annotations_bytes)
    not_done: list = []
    if tool == "label_studio" and format == "json":
        reviews, not_done = label_studio.ls_reviews(export, coco, names, file)
    elif tool == "label_studio" and format == "coco":
        reviews = review.coco_reviews(export, coco, names, file, "label_studio")
    elif tool == "cvat":
        if not job_completed:
            raise IngestError(
                f"{file}: CVAT's COCO 1.0 export does not say whether the job is done. Mark the job "
                "'completed' in CVAT (Job state), export that job or task, and pass --job-completed; "
                "every image in the export then becomes verified with exactly its boxes (none = a negative)")
        reviews = review.coco_reviews(export, coco, names, file, "cvat")
    else:
        raise config.ConfigError(f"unknown tool/format {tool}/{format}")
    new, counts = review.apply_reviews(coco, reviews)
    counts["not_done"] = len(not_done)
    changed = save_coco(root, coco, new)
    counts["dataset_changed"] = changed
    _write_report(params, f"import_{tool}.json", counts)
    log = get_run_logger()
    log.info("import %s: %d images verified, %d already verified and kept as they were, %d not done in the tool; "
             "boxes: %d unchanged, %d changed or new, %d deleted", tool, counts["verified"],
             counts["kept_verified"], counts["not_done"], counts["unchanged_boxes"],
             counts["changed_or_new_boxes"], counts["deleted_boxes"])
    log.info(dvc_hint(root) if changed else "nothing changed (this export was already imported)")
    return counts


def import_ls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="Label Studio export: JSON (default) or COCO (result.json or the zip)")
    p.add_argument("--format", choices=["json", "coco"], default="json")


def import_cvat_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="CVAT 'COCO 1.0' export (the zip, or annotations/instances_default.json)")
    p.add_argument("--job-completed", action="store_true",
                   help="the exported job/task is marked completed in CVAT: its images become verified")
