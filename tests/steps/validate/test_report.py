"""report.json / report.md: what a failed or skipped check looks like to a machine and a person."""
from __future__ import annotations

import json

import pytest

from camtune.steps.validate.findings import RULES, CheckResult, Finding
from camtune.steps.validate.report import ValidationReport


def report():
    return ValidationReport("data/u", "u1", {
        "tables": CheckResult("tables", [
            Finding("warning", "FOREIGN_USER", "belongs to | someone", image_id=3),
            Finding("error", "BOX_NAN", "bbox has NaN", image_id=1.0, annotation_id=11),
        ]),
        "audit": CheckResult("audit", skipped="no reference model"),
    }, counts={"images": 2}, gx_results={"images": {"success": True}})


def test_findings_validate_their_fields():
    with pytest.raises(ValueError):
        Finding("fatal", "BOX_NAN", "x")
    with pytest.raises(ValueError):
        Finding("error", "NO_SUCH_RULE", "x")
    assert Finding("error", "BOX_NAN", "x", image_id=1.0).image_id == 1  # numpy/pandas floats -> int
    assert all(check in ("schema", "tables", "attributes", "files", "lineage", "audit") for check, _ in RULES.values())


def test_status_and_pass_fail():
    r = report()
    assert not r.passed
    assert r.checks["tables"].status == "failed" and r.checks["audit"].status == "skipped"
    assert CheckResult("x", [Finding("warning", "DUP_CONTENT", "d")]).status == "warned"
    assert CheckResult("x").status == "passed"


def test_report_files(tmp_path):
    r = report()
    r.write(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["passed"] is False
    assert data["counts"]["findings"] == {"error": 1, "warning": 1, "info": 0}
    assert data["counts"]["by_rule"] == {"BOX_NAN": 1, "FOREIGN_USER": 1}
    assert [f["rule"] for f in data["findings"]] == ["BOX_NAN", "FOREIGN_USER"]  # errors first
    assert data["findings"][0] == {"severity": "error", "rule": "BOX_NAN", "message": "bbox has NaN",
                                   "image_id": 1, "annotation_id": 11, "file": None}
    assert data["checks"]["audit"] == {"status": "skipped", "skipped_reason": "no reference model", "findings": 0}
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Dataset validation: FAILED")
    assert "| audit | **SKIPPED** | 0 | no reference model |" in md
    assert "belongs to \\| someone" in md  # a pipe in a message does not break the table
    assert json.loads((tmp_path / "gx_results.json").read_text()) == {"images": {"success": True}}


def test_summary_lines_are_the_first_errors():
    r = ValidationReport("d", "u", {"tables": CheckResult("tables", [
        Finding("error", "BOX_NAN", f"m{i}", image_id=i, annotation_id=i) for i in range(15)])})
    lines = r.summary_lines(limit=3)
    assert lines[0] == "ERROR BOX_NAN [image 0, annotation 0]: m0"
    assert lines[-1] == "... and 12 more errors (BOX_NAN 12); all in report.json" and len(lines) == 4
