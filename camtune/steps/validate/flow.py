"""validate: check the user dataset (schema, GX table suite, attribute containment, files, new data,
every-object-labeled audit) and write `artifacts/validate/` (report.json, report.md, gx_results.json).
`camtune validate`; a dataset with error findings exits non-zero, the report is still written,
also when validate itself fails (an INTERNAL finding).

The loaded dataset never travels through a task's inputs: Prefect walks every input collection
(a dict of 50,000 boxes is 50,000 visits per task), so tasks get a key into this process's
loaded datasets and the params (small); a worker in another process (Dask) loads it once itself.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from camtune.contracts import artifacts
from camtune.core import atomic, config
from camtune.steps import validate as validation
from camtune.core.errors import StepFailed

OUT_DIR = artifacts.VALIDATE_DIR

_context = validation.shared_context


# Each run must look afresh: nothing to cache.
@task(name="read-user-dataset", cache_policy=NO_CACHE)
def read_user_dataset(key: str, params: config.Params) -> dict:
    """The user dataset read without trusting it (validation.prepare), kept in this process under `key`."""
    ctx = _context(key, params)
    return {"readable": ctx.loaded is not None, "images": 0 if ctx.loaded is None else len(ctx.loaded.images)}


@task(name="check", cache_policy=NO_CACHE, task_run_name="check-{name}")
def run_check(name: str, key: str, params: config.Params, usable_ids: list | None = None
              ) -> validation.CheckResult:
    ctx = _context(key, params)
    fn = getattr(validation, f"check_{name}")
    if name == "audit":
        files = validation.CheckResult("files", evidence={"usable_image_ids": usable_ids or []})
        return validation.guarded(name, fn, ctx, files)
    return validation.guarded(name, fn, ctx)


@task(name="check-files-shard", cache_policy=NO_CACHE)
def files_shard(key: str, params: config.Params, shard: int, shards: int) -> list:
    return validation.file_checks(_context(key, params), shard, shards)


def check_files_fanned_out(key: str, params: config.Params, images: int) -> validation.CheckResult:
    """The file checks in `validate.file_shards` tasks, on the flow's task runner (threads, or a
    Dask cluster with `pipeline.task_runner: dask`)."""
    ctx = _context(key, params)
    if ctx.loaded is None:
        return validation.check_files(ctx)
    try:
        n = max(1, min(params.validate.file_shards, images))
        futures = [files_shard.submit(key, params, i, n) for i in range(n)]
        return validation.files_result([c for f in futures for c in f.result()])
    except Exception as exc:
        return validation.CheckResult("files", [validation.internal("check files", exc)])


def _run(key: str, params: config.Params) -> validation.ValidationReport:
    info = read_user_dataset(key, params)
    results = {name: run_check(name, key, params) for name in ("schema", "tables", "attributes")}
    results["files"] = check_files_fanned_out(key, params, info["images"])
    results["lineage"] = run_check("lineage", key, params)
    usable = results["files"].evidence.get("usable_image_ids", [])
    results["audit"] = run_check("audit", key, params, usable)
    return validation.assemble(_context(key, params), [results[name] for name in validation.CHECKS])


def _internal_report(params: config.Params, exc: BaseException) -> validation.ValidationReport:
    check = validation.CheckResult("schema", [validation.internal("validate", exc)])
    return validation.ValidationReport(dataset=str(params.data.user_dataset), user_id=params.user.id,
                                       checks={"schema": check})


@flow(name="validate")
def validate_flow(params_path: str = "params.yaml", overrides: dict | None = None,
                     out_dir: str = str(OUT_DIR)) -> dict:
    """Validate params.data.user_dataset; write the report; fail (StepFailed) on error findings."""
    # a folder the user names (not the stage's own artifacts/validate) is replaced only if camtune wrote it
    owner = None if Path(out_dir) == OUT_DIR else "validate"
    if owner:
        atomic.check_ours(out_dir, owner)
    params = config.load(params_path, overrides)
    log = get_run_logger()
    key = uuid.uuid4().hex
    try:
        report = _run(key, params)
    except Exception as exc:  # the top-level guard: a bug still ends in a report and exit 1
        report = _internal_report(params, exc)
    finally:
        validation.release_context(key)
    try:
        with atomic.output_dir(out_dir, owner=owner) as tmp:
            report.write(tmp)
    except Exception as exc:
        report = _internal_report(params, exc)
        with atomic.output_dir(out_dir, owner=owner) as tmp:
            report.write(tmp)
    try:
        create_markdown_artifact(key="validation-report", markdown=report.to_markdown(),
                                 description=f"dataset validation of {report.dataset}")
    except Exception as exc:  # the artifact is a convenience; report.json is the record
        log.warning("validate: could not post the markdown artifact: %s", exc)
    sev = report.severity_counts()
    log.info("validate: %s — %d errors, %d warnings; report in %s",
             "passed" if report.passed else "FAILED", sev["error"], sev["warning"], out_dir)
    if not report.passed:
        raise StepFailed(
            f"dataset {validation.escape(report.dataset)} failed validation with {sev['error']} errors "
            f"(full list: {Path(out_dir) / 'report.md'}; each finding drawn on its image: run "
            f"`camtune report` and open artifacts/report/index.html):\n  "
            + "\n  ".join(report.summary_lines()))
    return {"passed": True, "findings": sev, "report": str(Path(out_dir) / "report.json")}

