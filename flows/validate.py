"""validate: check the user dataset (schema, GX table suite, attribute containment, files, new data,
every-object-labeled audit) and write `artifacts/validate/` (report.json, report.md, gx_results.json).
`python -m flows.validate`; a dataset with error findings exits non-zero, the report is still written."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from camtune import artifacts, atomic, config, validation
from camtune.errors import StepFailed
from flows import _cli

OUT_DIR = artifacts.VALIDATE_DIR


# The checks take pandas tables: nothing to hash for a cache key, and each run must look afresh.
@task(name="read-user-dataset", cache_policy=NO_CACHE)
def read_user_dataset(params: config.Params) -> validation.Context:
    """The user dataset read without trusting it (validation.prepare), for the checks below."""
    return validation.prepare(params)


@task(name="check", cache_policy=NO_CACHE, task_run_name="check-{name}")
def run_check(name: str, ctx: validation.Context, files: validation.CheckResult | None = None
              ) -> validation.CheckResult:
    fn = getattr(validation, f"check_{name}")
    return fn(ctx, files) if name == "audit" else fn(ctx)


@task(name="check-files-shard", cache_policy=NO_CACHE)
def files_shard(ctx: validation.Context, image_ids: list) -> list:
    return validation.file_checks(ctx, image_ids)


def check_files_fanned_out(ctx: validation.Context) -> validation.CheckResult:
    """The file checks in `validate.file_shards` tasks, on the flow's task runner (threads, or a
    Dask cluster with `pipeline.task_runner: dask`)."""
    if ctx.loaded is None:
        return validation.check_files(ctx)
    ids = ctx.loaded.images["id"].tolist()
    n = max(1, min(ctx.params.validation.file_shards, len(ids)))
    futures = [files_shard.submit(ctx, ids[i::n]) for i in range(n)]
    return validation.files_result([c for f in futures for c in f.result()])


@flow(name="validate_dataset")
def validate_dataset(params_path: str = "params.yaml", overrides: dict | None = None,
                     out_dir: str = str(OUT_DIR)) -> dict:
    """Validate params.data.user_dataset; write the report; fail (StepFailed) on error findings."""
    params = config.load(params_path, overrides)
    log = get_run_logger()
    ctx = read_user_dataset(params)
    results = {name: run_check(name, ctx) for name in ("schema", "tables", "attributes")}
    results["files"] = check_files_fanned_out(ctx)
    results["lineage"] = run_check("lineage", ctx)
    results["audit"] = run_check("audit", ctx, results["files"])
    report = validation.assemble(ctx, [results[name] for name in validation.CHECKS])

    with atomic.output_dir(out_dir) as tmp:
        report.write(tmp)
    markdown = report.to_markdown()
    create_markdown_artifact(key="validation-report", markdown=markdown,
                             description=f"dataset validation of {report.dataset}")
    sev = report.severity_counts()
    log.info("validate: %s — %d errors, %d warnings; report in %s",
             "passed" if report.passed else "FAILED", sev["error"], sev["warning"], out_dir)
    if not report.passed:
        raise StepFailed(
            f"dataset {report.dataset} failed validation with {sev['error']} errors "
            f"(full list: {Path(out_dir) / 'report.md'}; each finding drawn on its image: run "
            f"`python -m flows.report` and open artifacts/report/index.html):\n  "
            + "\n  ".join(report.summary_lines()))
    return {"passed": True, "findings": sev, "report": str(Path(out_dir) / "report.json")}


if __name__ == "__main__":
    raise SystemExit(_cli.run(validate_dataset))
