"""validate: every rule a user dataset must pass before it may train a model. Reads
`data.user_dataset` and the registry (the user's newest model's lineage, the incumbent); writes
artifacts/validate/ (report.json with every finding by code, image and annotation id; report.md;
gx_results.json) and exits non-zero on error findings. `camtune validate` runs it (flow.py).

Front door: `validate(params)` (checks.py) runs the checks in order: schema, tables (a Great
Expectations suite), attributes (containment), files, lineage (enough new data) and audit (every
object labeled, with a reference model). Nothing here writes to the dataset folder.
"""
from camtune.steps.validate.checks import (CHECKS, RULES, CheckResult, Finding, escape, ValidationReport, Context, prepare, validate, check_schema, check_tables, check_attributes, check_files, check_lineage, check_audit, check_incumbent, assemble, file_checks, files_result, guarded, internal, shared_context, release_context)

__all__ = ["CHECKS", "RULES", "CheckResult", "Finding", "escape", "ValidationReport", "Context", "prepare", "validate", "check_schema", "check_tables", "check_attributes", "check_files", "check_lineage", "check_audit", "check_incumbent", "assemble", "file_checks", "files_result", "guarded", "internal", "shared_context", "release_context"]
