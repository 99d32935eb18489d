"""camtune/contracts/verdict.py: gate.json read one way (errors naming the file), its typed fields,
and the two rules written once: may the model be published, is it promoted."""
from __future__ import annotations

import json

import pytest

from camtune.contracts.verdict import INCUMBENT_VERDICTS, VERDICTS, Verdict, check_outcome
from camtune.core.errors import StepFailed


GATE = {"blessed": False, "baseline": "base", "failed": ["user_gain"], "checks": [
    {"name": "user_gain", "metric": "user.map50", "threshold": 0.3, "observed": 0.2, "passed": False,
     "why": "tuned must beat base"},
    {"name": "global_floor", "metric": "global.map50", "threshold": 0.1, "observed": 0.5, "passed": True,
     "why": "floor"}]}


def test_verdict_summary_reasons_and_refusal(tmp_path):
    # a gate.json from before verdicts (blessed + observed) still reads
    (tmp_path / "gate.json").write_text(json.dumps(GATE))
    v = Verdict.read(tmp_path / "gate.json")
    assert not v.blessed and v.verdict == "not_blessed" and v.headline() == "NOT blessed (refused by user_gain)"
    assert v.reasons() == "user_gain: observed 0.2 vs 0.3" and v.data == GATE
    with pytest.raises(StepFailed, match=r"gate.json: the model is not blessed(.|\n)*user_gain \(failed\): "
                                         r"tuned must beat base \(observed 0.2 vs 0.3\)"):
        v.check_blessed(allow_inconclusive=True)
    ok = Verdict.from_dict({**GATE, "blessed": True, "failed": []})
    assert ok.check_blessed() is ok and ok.headline() == "BLESSED" and ok.verdict == "blessed"


INCONCLUSIVE = {"verdict": "inconclusive", "blessed": False, "baseline": "base", "failed": [],
                "deciding": ["user_gain"], "advice": ["the user holdout has 15 images; about 60 would do"],
                "checks": [{"name": "user_gain", "metric": "user.map50", "threshold": 0.0, "point": 0.02,
                            "interval": [-0.03, 0.07], "verdict": "inconclusive", "passed": False,
                            "why": "tuned must beat base"}]}


def test_inconclusive_is_refused_unless_allowed():
    v = Verdict.from_dict(INCONCLUSIVE)
    assert not v.blessed and v.headline() == "INCONCLUSIVE (too little evidence on user_gain)"
    assert v.reasons() == "user_gain: estimate 0.02, interval [-0.03, 0.07] vs 0.0"
    with pytest.raises(StepFailed, match=r"inconclusive(.|\n)*allow_inconclusive(.|\n)*about 60 would do"):
        v.check_blessed()
    assert v.check_blessed(allow_inconclusive=True) is v
    with pytest.raises(StepFailed, match="verdict 'maybe'"):
        Verdict.from_dict({**INCONCLUSIVE, "verdict": "maybe"})


def test_missing_or_broken_gate_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StepFailed, match=r"gate.json: not found \(run `dvc repro evaluate`\)"):
        Verdict.read()
    (tmp_path / "g.json").write_text("[")
    with pytest.raises(StepFailed, match="g.json: not valid JSON"):
        Verdict.read(tmp_path / "g.json")



def test_read_optional_is_none_when_absent_or_unreadable(tmp_path):
    assert Verdict.read_optional(tmp_path / "gate.json") is None
    (tmp_path / "gate.json").write_text("{not json")
    assert Verdict.read_optional(tmp_path / "gate.json") is None
    (tmp_path / "gate.json").write_text(json.dumps({**INCONCLUSIVE, "verdict": "maybe"}))
    assert Verdict.read_optional(tmp_path / "gate.json") is None
    (tmp_path / "gate.json").write_text(json.dumps(INCONCLUSIVE))
    assert Verdict.read_optional(tmp_path / "gate.json").verdict == "inconclusive"


def test_typed_fields_of_gate_json():
    v = Verdict.from_dict({**INCONCLUSIVE, "summary": "too little evidence", "confidence": 0.9,
                           "advice": ["add images", 3], "promote": False, "promotion": "the gate is inconclusive",
                           "incumbent": {"verdict": "none", "name": None, "summary": "first model"}})
    assert v.summary == "too little evidence" and v.confidence == 0.9 and v.advice == ["add images"]
    assert v.promote is False and v.promotion_reason == "the gate is inconclusive"
    assert v.incumbent["summary"] == "first model" and [c["name"] for c in v.deciding] == ["user_gain"]
    legacy = Verdict.from_dict(GATE)  # from before verdicts, intervals and the incumbent
    assert legacy.summary is None and legacy.confidence is None and legacy.advice == []
    assert legacy.incumbent is None and legacy.promote is None and legacy.promotion_reason is None


@pytest.mark.parametrize("check, outcome", [
    ({"verdict": "passed"}, "passed"), ({"verdict": "failed", "passed": True}, "failed"),
    ({"verdict": "inconclusive"}, "inconclusive"), ({"verdict": "uninformative"}, "uninformative"),
    ({"verdict": "PASS"}, "passed"), ({"passed": True}, "passed"), ({"passed": False}, "failed"), ({}, "failed")])
def test_check_outcome_reads_the_verdict_else_the_passed_flag(check, outcome):
    assert check_outcome(check) == outcome


def _gate(verdict: str, incumbent: str | None = None) -> Verdict:
    gate = {"verdict": verdict, "blessed": verdict == "blessed", "baseline": "base", "summary": verdict,
            "failed": ["user_gain"] if verdict == "not_blessed" else [], "checks": []}
    if incumbent is not None:
        gate["incumbent"] = {"verdict": incumbent, "name": "registry:m_old", "summary": f"it is {incumbent}"}
    return Verdict.from_dict(gate)


@pytest.mark.parametrize("verdict", VERDICTS)
@pytest.mark.parametrize("allow", [False, True])
def test_may_publish_blessed_or_inconclusive_when_allowed(verdict, allow):
    expected = verdict == "blessed" or (verdict == "inconclusive" and allow)
    v = _gate(verdict)
    assert v.may_publish(allow) is expected
    if expected:
        assert v.check_blessed(allow) is v
    else:
        with pytest.raises(StepFailed, match="refusing to publish"):
            v.check_blessed(allow)


# (gate verdict, incumbent verdict, allow_inconclusive) -> promoted
PROMOTED = {
    ("blessed", "none"): (True, True), ("blessed", "not_worse"): (True, True),
    ("blessed", "worse"): (False, False), ("blessed", "inconclusive"): (False, True),
    ("inconclusive", "none"): (False, True), ("inconclusive", "not_worse"): (False, True),
    ("inconclusive", "worse"): (False, False), ("inconclusive", "inconclusive"): (False, True),
}


@pytest.mark.parametrize("verdict", VERDICTS)
@pytest.mark.parametrize("incumbent", INCUMBENT_VERDICTS)
@pytest.mark.parametrize("allow", [False, True])
def test_promotion_for_every_verdict_and_incumbent(verdict, incumbent, allow):
    p = _gate(verdict, incumbent).promotion(allow)
    expected = PROMOTED.get((verdict, incumbent), (False, False))[allow]  # never when not blessed
    assert p["promoted"] is expected and p["incumbent_verdict"] == incumbent
    assert p["incumbent"] == "registry:m_old"
    if not _gate(verdict).may_publish(allow):
        assert p["reason"] == f"the gate is {verdict}"
    elif expected:
        assert p["reason"] == f"it is {incumbent}"
    else:
        what = "worse than" if incumbent == "worse" else "inconclusive against"
        assert p["reason"] == f"{what} the incumbent registry:m_old: it is {incumbent}"


def test_promotion_without_an_incumbent_section():
    assert _gate("blessed").promotion() == {"promoted": True, "incumbent": None, "incumbent_verdict": "none",
                                            "reason": "no incumbent compared"}
    assert _gate("inconclusive").promotion(True)["promoted"] is True
    assert _gate("inconclusive").promotion(False)["promoted"] is False
