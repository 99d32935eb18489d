"""The validate step's checks and their order: `validate(params)` loads the user dataset without
trusting it and runs schema, tables, attributes, files, lineage and audit; each returns a
`CheckResult`, the `ValidationReport` gathers them."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from camtune.core.config import Params
from camtune.steps.validate.findings import CHECKS, RULES, CheckResult, Finding, escape
from camtune.steps.validate.load import Loaded, load
from camtune.steps.validate.report import ValidationReport

__all__ = ["CHECKS", "RULES", "CheckResult", "Finding", "escape", "ValidationReport", "Context", "prepare", "validate",
           "check_schema", "check_tables", "check_attributes", "check_files", "check_lineage",
           "check_audit", "assemble", "file_checks", "files_result", "guarded", "internal",
           "shared_context", "release_context"]


@dataclass(frozen=True)
class Context:
    params: Params
    root: Path
    loaded: Loaded | None          # None when annotations.json cannot be read at all
    load_findings: tuple[Finding, ...]


def prepare(params: Params) -> Context:
    root = Path(params.data.user_dataset)
    try:
        loaded, findings = load(root, params.validate.max_annotations_bytes)
    except Exception as exc:  # a bug in loading: the report still says so, as a finding
        loaded, findings = None, [internal("load", exc)]
    return Context(params, root, loaded, tuple(findings))


_SHARED: dict[str, Context] = {}
_SHARED_LOCK = threading.Lock()


def shared_context(key: str, params: Params) -> Context:
    """The dataset loaded once per process under `key`, so flow tasks can take the key instead of
    the tables (Prefect walks every input collection of a task). A process that does not have it
    yet (a Dask worker) loads it from `params` once."""
    with _SHARED_LOCK:
        ctx = _SHARED.get(key)
        if ctx is None:
            ctx = _SHARED[key] = prepare(params)
        return ctx


def release_context(key: str) -> None:
    with _SHARED_LOCK:
        _SHARED.pop(key, None)


def internal(where: str, exc: BaseException) -> Finding:
    """INTERNAL: an unexpected exception in a check, one line; the traceback goes to report.json."""
    import traceback

    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return Finding("error", "INTERNAL", f"{where} crashed (a bug in validate, please report it): {text}",
                   detail="".join(traceback.format_exception(exc)))


def guarded(name: str, fn, *args, **kwargs) -> CheckResult:
    """Run one check; an unexpected exception becomes its INTERNAL finding, the others still run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return CheckResult(name, [internal(f"check {name}", exc)])


def _unreadable(name: str) -> CheckResult:
    return CheckResult(name, skipped="annotations.json could not be read")


def check_schema(ctx: Context) -> CheckResult:
    return CheckResult("schema", list(ctx.load_findings))


def check_tables(ctx: Context) -> CheckResult:
    if ctx.loaded is None:
        return _unreadable("tables")
    from camtune.steps.validate.tables import check_tables as run

    p = ctx.params
    findings, gx = run(ctx.loaded.images, ctx.loaded.annotations, ctx.loaded.categories, p.validate,
                       p.labels.names, p.user.id)
    stats = {name: dict(res.statistics) for name, res in gx.items()}
    return CheckResult("tables", findings, details={"gx_statistics": stats}, evidence=gx)


def check_attributes(ctx: Context) -> CheckResult:
    if ctx.loaded is None:
        return _unreadable("attributes")
    from camtune.steps.validate.geometry import check_containment

    labels = ctx.params.labels
    return CheckResult("attributes", check_containment(
        ctx.loaded.annotations, dict(labels.attribute_parents), ctx.params.validate.containment_tolerance))


def file_checks(ctx: Context, shard: int = 0, shards: int = 1) -> list:
    """Per-file checks (path safety, decode, size, format, bomb, sha256) of every `shards`-th image
    record from `shard` on; shards can run on different workers (Dask)."""
    from camtune.steps.validate.files import check_file_records

    images = ctx.loaded.images
    if shards > 1:
        images = images.iloc[shard::shards]  # by row: a record without a usable id is checked too
    return check_file_records(ctx.root, images, ctx.params.validate)


def files_result(checks: list) -> CheckResult:
    """Gather the shards: their findings, DUP_CONTENT across all of them, the usable images."""
    from camtune.steps.validate.files import duplicate_content, same_file

    findings = [f for c in checks for f in c.findings] + same_file(checks) + duplicate_content(checks)
    bad = {f.image_id for f in findings if f.severity == "error"}
    usable = sorted(c.image_id for c in checks if c.decoded and c.image_id not in bad
                    and c.image_id is not None)
    return CheckResult("files", findings, details={"files_checked": len(checks), "usable_images": len(usable)},
                       evidence={"usable_image_ids": usable})


def check_files(ctx: Context) -> CheckResult:
    if ctx.loaded is None:
        return _unreadable("files")
    return files_result(file_checks(ctx))


def check_lineage(ctx: Context) -> CheckResult:
    if ctx.loaded is None:
        return _unreadable("lineage")
    from camtune.steps.validate.lineage import check_lineage as run, previous_lineage

    try:
        lineage = previous_lineage(ctx.params.publish.registry, ctx.params.user.id)
    except Exception as exc:  # an unreadable registry must not pass as "first model"
        return CheckResult("lineage", [Finding("error", "REGISTRY_UNREADABLE",
                                               f"cannot read the user's newest model lineage: {exc}")])
    findings, counts = run(ctx.loaded.images, ctx.params.user.id, ctx.params.validate, lineage)
    findings += check_incumbent(ctx.params)
    return CheckResult("lineage", findings, details=counts)


def check_incumbent(params: Params) -> list[Finding]:
    """The model the user runs now (evaluate.incumbent), resolved as evaluate will: a missing file,
    a file that is not a Frigate-contract TFLite, an unparsable label map or a registry entry whose
    file is gone stops the run here, before any training (docs/incumbent.md)."""
    import tempfile

    from camtune.model.incumbent import resolve

    try:
        with tempfile.TemporaryDirectory(prefix="camtune-incumbent-") as tmp:
            resolve(params, tmp)
    except Exception as exc:  # StepFailed names the file; anything else (a store error) too, as text
        return [Finding("error", "INCUMBENT_UNUSABLE", f"evaluate.incumbent: {' '.join(str(exc).split())}")]
    return []


def check_audit(ctx: Context, files: CheckResult, detector=None) -> CheckResult:
    v = ctx.params.validate
    if v.reference_model is None:
        return CheckResult("audit", skipped="no reference model (validate.reference_model is null): "
                                            "unlabeled objects were NOT audited")
    if ctx.loaded is None:
        return _unreadable("audit")
    from camtune.steps.validate.audit import run_audit

    usable = set(files.evidence.get("usable_image_ids", []))
    images = ctx.loaded.images
    images = images[images["verified"] & images["id"].isin(usable)]
    try:
        findings, details = run_audit(ctx.root, images, ctx.loaded.annotations, v.reference_model,
                                      ctx.params.labels.names, v.audit, detector=detector)
    except (OSError, ValueError, RuntimeError) as exc:  # missing/corrupt model, wrong I/O contract
        return CheckResult("audit", [Finding("error", "AUDIT_MODEL_UNUSABLE",
                                             f"reference model {v.reference_model}: {exc}")])
    return CheckResult("audit", findings, details=details)


def assemble(ctx: Context, results: list[CheckResult]) -> ValidationReport:
    checks = {r.name: r for r in results}
    counts = {}
    if ctx.loaded is not None:
        imgs = ctx.loaded.images
        counts = {"images": int(len(imgs)), "annotations": int(len(ctx.loaded.annotations)),
                  "verified_images": int(imgs["verified"].sum())}
    lineage = checks.get("lineage")
    if lineage is not None and "new_verified" in lineage.details:
        counts["new_verified_images"] = lineage.details["new_verified"]
        counts["first_model"] = lineage.details["first_model"]
    gx = checks["tables"].evidence if "tables" in checks else {}
    return ValidationReport(dataset=str(ctx.root), user_id=ctx.params.user.id, checks=checks, counts=counts,
                            gx_results=gx)


def validate(params: Params, *, detector=None) -> ValidationReport:
    """Run every check on `params.data.user_dataset`; read-only."""
    ctx = prepare(params)
    files = guarded("files", check_files, ctx)
    results = [guarded("schema", check_schema, ctx), guarded("tables", check_tables, ctx),
               guarded("attributes", check_attributes, ctx), files, guarded("lineage", check_lineage, ctx),
               guarded("audit", check_audit, ctx, files, detector=detector)]
    return assemble(ctx, results)
