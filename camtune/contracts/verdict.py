"""The gate's decision: evaluate's gate.json, read one way by everything that reads it (publish,
the train_model flow, the report), and the two rules that follow from it, each written once here:
may the model be published (`Verdict.may_publish`), and is a published model made the user's
current one (`Verdict.promotion`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from camtune.contracts.artifacts import GATE, read_json
from camtune.core.errors import StepFailed

VERDICTS = ("blessed", "not_blessed", "inconclusive")
# gate.json's "incumbent" section: the tuned model against the model the user runs now
INCUMBENT_VERDICTS = ("not_worse", "worse", "inconclusive", "none")
CHECK_OUTCOMES = ("passed", "failed", "inconclusive", "uninformative")


def check_outcome(check: dict) -> str:
    """One of CHECK_OUTCOMES for a gate check: its `verdict`, or (a gate.json from before
    verdicts) its `passed` flag."""
    v = check.get("verdict")
    if isinstance(v, str) and v:
        v = v.lower()
        return {"pass": "passed", "fail": "failed"}.get(v, v)
    return "passed" if check.get("passed") else "failed"


@dataclass(frozen=True)
class Verdict:
    """evaluate's gate.json (camtune.steps.evaluate.gate.decide writes it): `{"verdict": blessed |
    not_blessed | inconclusive, "blessed", "baseline", "summary", "confidence", "deciding": [names],
    "failed", "inconclusive", "uninformative", "advice": [...], "checks": [{name, metric, kind,
    threshold, point, interval, tuned, baseline, verdict, why, ...}], "incumbent": {...},
    "promote", "promotion"}`. A gate.json from before verdicts (`blessed` + `observed` only) reads
    as blessed / not_blessed."""

    blessed: bool
    baseline: str | None
    failed: tuple[str, ...]
    checks: tuple[dict, ...]
    path: Path | None = None
    data: dict = field(default_factory=dict, repr=False)  # gate.json as written
    verdict: str = "not_blessed"

    @classmethod
    def from_dict(cls, gate: dict, path: Path | None = None) -> "Verdict":
        if not isinstance(gate, dict):
            raise StepFailed(f"{path or 'gate'}: expected a JSON object")
        checks = tuple(c for c in gate.get("checks") or [] if isinstance(c, dict))
        verdict = gate.get("verdict") or ("blessed" if gate.get("blessed") is True else "not_blessed")
        if verdict not in VERDICTS:
            raise StepFailed(f"{path or 'gate'}: verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        failed = tuple(gate.get("failed") if "failed" in gate else
                       (c.get("name") for c in checks if not c.get("passed")))
        return cls(verdict == "blessed" and gate.get("blessed") is not False, gate.get("baseline"), failed,
                   checks, path, dict(gate), verdict)

    @classmethod
    def read(cls, path: str | Path = GATE) -> "Verdict":
        """StepFailed naming the file (and the stage to run) when missing, not JSON or malformed."""
        return cls.from_dict(read_json(path), Path(path))

    @classmethod
    def read_optional(cls, path: str | Path = GATE) -> "Verdict | None":
        """The verdict, or None when gate.json is absent or unreadable (the report shows what exists)."""
        try:
            return cls.read(path)
        except StepFailed:
            return None

    # ------------------------------------------------------------ gate.json's fields, typed

    @property
    def summary(self) -> str | None:
        """The gate's own sentence on why (gate.json's `summary`)."""
        s = self.data.get("summary")
        return s if isinstance(s, str) and s else None

    @property
    def confidence(self) -> float | None:
        c = self.data.get("confidence")
        return float(c) if isinstance(c, (int, float)) else None

    @property
    def advice(self) -> list[str]:
        """How to resolve an inconclusive verdict (e.g. how many images would do)."""
        return [a for a in self.data.get("advice") or [] if isinstance(a, str)]

    @property
    def deciding(self) -> list[dict]:
        """The checks the verdict rests on (failed ones for not_blessed, open ones for inconclusive)."""
        names = self.data.get("deciding") or list(self.failed)
        by = {c.get("name"): c for c in self.checks}
        return [by[n] for n in names if n in by] or [c for c in self.checks if not c.get("passed")]

    @property
    def failed_checks(self) -> list[dict]:
        return [c for c in self.checks if not c.get("passed")]

    @property
    def incumbent(self) -> dict | None:
        """gate.json's comparison with the incumbent (docs/incumbent.md), None when there is none."""
        inc = self.data.get("incumbent")
        return inc if isinstance(inc, dict) else None

    @property
    def promote(self) -> bool | None:
        """Whether evaluate found the model promotable (`promotion(False)` when it wrote gate.json);
        None for a gate.json from before the incumbent comparison."""
        p = self.data.get("promote")
        return p if isinstance(p, bool) else None

    @property
    def promotion_reason(self) -> str | None:
        """Why (not) promoted, as evaluate wrote it (gate.json's `promotion`)."""
        return self.data.get("promotion")

    # ------------------------------------------------------------ wording

    def headline(self) -> str:
        """One line: `BLESSED`, `NOT blessed (refused by user_gain, ...)`, `INCONCLUSIVE (...)`."""
        if self.blessed:
            return "BLESSED"
        if self.verdict == "inconclusive":
            return f"INCONCLUSIVE (too little evidence on {', '.join(c.get('name') for c in self.deciding)})"
        return f"NOT blessed (refused by {', '.join(self.failed) or 'no listed check'})"

    @staticmethod
    def _line(c: dict) -> str:
        iv = c.get("interval")
        if iv:
            return f"estimate {c.get('point')}, interval [{iv[0]}, {iv[1]}] vs {c.get('threshold')}"
        return f"observed {c.get('point', c.get('observed'))} vs {c.get('threshold')}"

    def reasons(self) -> str:
        """The deciding checks on one line: `name: estimate X, interval [lo, hi] vs T; ...`."""
        return "; ".join(f"{c.get('name')}: {self._line(c)}" for c in self.deciding)

    # ------------------------------------------------------------ the rules

    def may_publish(self, allow_inconclusive: bool = False) -> bool:
        """Blessed, or inconclusive and `allow_inconclusive` (publish.allow_inconclusive: the user
        accepting the risk)."""
        return self.blessed or (self.verdict == "inconclusive" and allow_inconclusive)

    def check_blessed(self, allow_inconclusive: bool = False) -> "Verdict":
        """Itself when it may be published (`may_publish`); otherwise StepFailed naming the checks
        the verdict rests on."""
        if self.may_publish(allow_inconclusive):
            return self
        lines = [f"  - {c.get('name')} ({c.get('verdict', 'failed')}): {c.get('why', '')} ({self._line(c)})"
                 for c in self.deciding]
        if not lines:
            lines = [f"  - {name}" for name in self.failed] or ["  - (gate.json lists no checks)"]
        if self.verdict == "inconclusive":
            lines += [f"  to resolve it: {a}" for a in self.advice]
            raise StepFailed(f"{self.path or 'gate'}: the gate is inconclusive (the evaluation sets are too "
                             f"small to tell); refusing to publish. Set publish.allow_inconclusive: true to "
                             f"publish it anyway, flagged as such. Checks:\n" + "\n".join(lines))
        raise StepFailed(f"{self.path or 'gate'}: the model is not blessed; refusing to publish. "
                         f"Failed checks:\n" + "\n".join(lines))

    def promotion(self, allow_inconclusive: bool = False) -> dict:
        """Is the model, once published, made the user's current one? Only when it may be published,
        and not when it is worse than the incumbent (the model the user runs now; docs/incumbent.md)
        nor when that comparison is inconclusive unless `allow_inconclusive`. A model not promoted
        is still recorded in the registry, with the reason, but never installed by default nor
        taken as the next incumbent. `{"promoted", "incumbent", "incumbent_verdict", "reason"}`."""
        inc = self.incumbent or {}
        v = inc.get("verdict", "none")
        if not self.may_publish(allow_inconclusive):
            promoted, reason = False, f"the gate is {self.verdict}"
        elif v in ("not_worse", "none") or (v == "inconclusive" and allow_inconclusive):
            promoted, reason = True, inc.get("summary") or "no incumbent compared"
        else:
            promoted = False
            reason = (f"{'worse than' if v == 'worse' else 'inconclusive against'} the incumbent "
                      f"{inc.get('name')}: {inc.get('summary')}")
        return {"promoted": promoted, "incumbent": inc.get("name"), "incumbent_verdict": v, "reason": reason}
