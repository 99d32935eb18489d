"""The validation report: `report.json` for machines (and the finetune stage's DVC dependency),
`report.md` for people (also posted as a Prefect markdown artifact), and the GX results."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from camtune.core import atomic
from camtune.steps.validate.findings import CHECKS, RULE_ORDER, RULES, SEVERITIES, CheckResult, Finding, escape

_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


def _id_key(v):
    # ids are ints, but a broken record may carry anything: numbers first, in numeric order
    return (0, v, "") if isinstance(v, int) else (1, 0, "" if v is None else str(v))


def _sort_key(f: Finding):
    # causal order: RULES lists causes (schema, unknown labels) before what they make fail
    return (_ORDER[f.severity], RULE_ORDER[f.rule], _id_key(f.image_id), _id_key(f.annotation_id), f.message)


@dataclass
class ValidationReport:
    """The validate step's outcome: every check's findings, the dataset's counts, the GX results."""

    dataset: str
    user_id: str
    checks: dict[str, CheckResult]
    counts: dict = field(default_factory=dict)
    gx_results: dict = field(default_factory=dict)  # {table: GX suite result}

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for c in self.checks.values() for f in c.findings), key=_sort_key)

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def passed(self) -> bool:
        return not self.errors()

    def severity_counts(self) -> dict[str, int]:
        c = Counter(f.severity for f in self.findings)
        return {s: c.get(s, 0) for s in SEVERITIES}

    def to_dict(self) -> dict:
        findings = self.findings
        return {
            "passed": self.passed,
            "dataset": self.dataset,
            "user_id": self.user_id,
            "counts": {**self.counts, "findings": self.severity_counts(),
                       "by_rule": dict(sorted(Counter(f.rule for f in findings).items()))},
            "checks": {
                name: {"status": c.status, "skipped_reason": c.skipped,
                       "findings": len(c.findings), **({"details": c.details} if c.details else {})}
                for name, c in self.checks.items()
            },
            "findings": [f.to_dict() for f in findings],
        }

    def summary_lines(self, limit: int = 10, per_rule: int = 3) -> list[str]:
        """Error findings in causal order, one short line each (what a failed run prints on
        stderr): at most `per_rule` of each rule, so one cause's many consequences cannot hide
        the next rule, then a count of the rest by rule."""
        errs = self.errors()
        shown, per = [], Counter()
        for f in errs:
            if len(shown) < limit and per[f.rule] < per_rule:
                shown.append(f)
                per[f.rule] += 1
        lines = [f.line() for f in shown]
        rest = Counter(f.rule for f in errs) - per
        if rest:
            listed = ", ".join(f"{code} {n}" for code, n in sorted(rest.items(), key=lambda kv: RULE_ORDER[kv[0]]))
            lines.append(f"... and {sum(rest.values())} more errors ({listed}); all in report.json")
        return lines

    def to_markdown(self, max_rows: int = 200) -> str:
        sev = self.severity_counts()
        verdict = "PASSED" if self.passed else "FAILED"
        out = [
            f"# Dataset validation: {verdict}",
            "",
            f"Dataset `{_md(self.dataset)}`, user `{self.user_id}`: {sev['error']} errors, "
            f"{sev['warning']} warnings, {sev['info']} notes.",
            "",
            "| count | value |", "| --- | --- |",
        ]
        for k, v in self.counts.items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                out.append(f"| {k} | {_md(v)} |")
        out += ["", "## Checks", "", "| check | status | findings | note |", "| --- | --- | --- | --- |"]
        for name in CHECKS:
            c = self.checks.get(name)
            if c is None:
                continue
            note = c.skipped or ""
            out.append(f"| {name} | **{c.status.upper()}** | {len(c.findings)} | {_md(note)} |")
        findings = self.findings
        out += ["", "## Findings", ""]
        if not findings:
            out.append("None.")
        else:
            out += ["| severity | rule | image | annotation | file | message |",
                    "| --- | --- | --- | --- | --- | --- |"]
            for f in findings[:max_rows]:
                out.append(f"| {f.severity} | {f.rule} | {_cell(f.image_id)} | {_cell(f.annotation_id)} | "
                           f"{_md(f.file or '')} | {_md(f.message)} |")
            if len(findings) > max_rows:
                out.append(f"\n{len(findings) - max_rows} more findings are listed in report.json.")
        out += ["", "## Rules", "", "| rule | check | meaning |", "| --- | --- | --- |"]
        out += [f"| {code} | {check} | {_md(text)} |" for code, (check, text) in RULES.items()]
        return "\n".join(out) + "\n"

    def write(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        atomic.write_json(out_dir / "report.json", self.to_dict())
        atomic.write_text(out_dir / "report.md", self.to_markdown())
        gx = {name: r.to_json_dict() if hasattr(r, "to_json_dict") else r for name, r in self.gx_results.items()}
        atomic.write_json(out_dir / "gx_results.json", gx)


def _cell(v) -> str:
    return "" if v is None else str(v)


def _md(text: str) -> str:
    return escape(str(text)).replace("|", "\\|")
