"""The run report: the HTML parses, every image it links exists, the verdict sentence is
gate.json's, a failed validation still gives a page with each error finding on its image, and the
same inputs give the same bytes."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.steps.report.conftest import PARAMS, failed_dataset


PREFIX = {"blessed": "Blessed", "not_blessed": "Not blessed", "inconclusive": "Inconclusive"}


class Page(HTMLParser):
    """Every tag with its attributes, the text, and tag balance (void elements excepted)."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.tags, self.stack, self.text, self.errors = [], [], [], []
        self.glue = False  # <wbr> is a line-break opportunity inside a word, not a space
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.glue = tag == "wbr"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.glue and self.text:
            self.text[-1] += data
        else:
            self.text.append(data)
        self.glue = False

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _render(params_path=PARAMS, overrides=None):
    from camtune.steps.report.flow import report_flow

    return report_flow(params_path=params_path, overrides=overrides)


def _check_page(root: Path) -> Page:
    html = (root / "artifacts/report/index.html").read_text()
    page = Page(html)
    assert not page.errors and not page.stack, (page.errors, page.stack)
    imgs = page.find("img")
    for img in imgs:
        assert img.get("alt"), f"image without alt text: {img}"
        src = root / "artifacts/report" / img["src"]
        assert src.is_file() and src.stat().st_size > 0, f"missing image {img['src']}"
        assert not Path(img["src"]).is_absolute() and ".." not in img["src"]
    files = {str(p.relative_to(root / "artifacts/report")) for p in (root / "artifacts/report").rglob("*")
             if p.is_file() and p.name != "index.html"}
    assert files == {i["src"] for i in imgs}, "every file beside the page is linked, and only those"
    return page


def test_page_of_a_passing_run(prefect_server, run_dir):
    params, root = run_dir
    out = _render(overrides=_overrides(params))
    page = _check_page(root)
    gate = json.loads((root / "artifacts/evaluate/gate.json").read_text())
    from camtune.contracts.verdict import Verdict
    from camtune.steps.report import verdict_sentence

    sentence = verdict_sentence(Verdict.from_dict(gate),
                                json.loads((root / "artifacts/validate/report.json").read_text()))
    text = " ".join(page.text)
    assert sentence in text and out["sentence"] == sentence
    assert sentence.startswith(PREFIX[gate.get("verdict", "blessed" if gate["blessed"] else "not_blessed")])
    # the checks table: one row per gate check with its observed value (and interval when there is one)
    for c in gate["checks"]:
        observed = c.get("observed", c.get("point"))
        assert c["name"] in text and (observed is None or f"{observed:.3f}" in text)
        if c.get("interval"):
            assert f"[{c['interval'][0]:.3f}, {c['interval'][1]:.3f}]" in text
    # pictures: per user camera and for the global set, base and tuned side by side
    user_imgs = [i for i in page.find("img") if i["src"].startswith("img/user_")]
    global_imgs = [i for i in page.find("img") if i["src"].startswith("img/global_")]
    cams = {json.loads(Path(m).read_text())["source"] for m in ["artifacts/finetune/holdout.json"]}
    assert user_imgs and len(global_imgs) == params.report.global_images
    assert all("Left, base model" in i["alt"] and "Right, tuned model" in i["alt"] for i in user_imgs)
    # per label: one PR chart per label with ground truth, the Frigate YAML block
    assert [i for i in page.find("img") if i["src"].startswith("charts/pr_person")]
    assert (root / "artifacts/evaluate/filters.yml").read_text().strip().splitlines()[-1].strip() in text
    # no registry baseline, Edge TPU skipped, the model id publish would give
    assert "this is your first model" in text and "not built:" in text and out["model_id"] in text
    # the audit's unlabeled-object suggestions are drawn, from the finding's figures (not its message)
    assert any("suggested unlabeled dog" in i["alt"] for i in page.find("img"))
    assert out["bytes"] < 5_000_000
    assert cams


def _overrides(params) -> dict:
    return {"data.user_dataset": params.data.user_dataset, "data.global_pool": params.data.global_pool,
            "publish.registry.root": params.publish.registry.root}


def test_not_blessed_and_inconclusive_sentences_follow_gate_json():
    from camtune.contracts.verdict import Verdict
    from camtune.steps.report import verdict_of, verdict_sentence

    gate = {"blessed": False, "baseline": "registry:abc", "failed": ["user_gain"],
            "checks": [{"name": "user_gain", "passed": False}, {"name": "global_floor", "passed": True}]}
    assert verdict_sentence(Verdict.from_dict(gate), None).startswith(
        "Not blessed: the tuned model failed 1 of 2 checks against your last published model (abc)")
    # issue 14's fields: a verdict string and per-check verdicts/intervals win over `blessed`
    gate = Verdict.from_dict({**gate, "verdict": "inconclusive", "checks": [
        {"name": "user_gain", "passed": False, "verdict": "inconclusive", "interval": [0.1, 0.4]}]})
    assert verdict_of(gate) == "inconclusive"
    assert verdict_sentence(gate, None).startswith("Inconclusive") and "(user_gain)" in verdict_sentence(gate, None)
    from camtune.steps.report.page import check_rows

    assert check_rows(gate)[0]["interval"] == "[0.100, 0.400]" and check_rows(gate)[0]["verdict"] == "inconclusive"
    assert verdict_of(None) == "none" and check_rows(None) == []
    assert verdict_sentence(None, {"passed": False, "counts": {"findings": {"error": 3}}}).startswith(
        "No model: your dataset failed validation with 3 errors")


def test_blessed_but_not_promoted_sentence_reads_the_verdicts_promotion():
    from camtune.contracts.verdict import Verdict
    from camtune.steps.report import verdict_sentence
    from camtune.steps.report.page import incumbent_view

    gate = Verdict.from_dict({"verdict": "blessed", "blessed": True, "baseline": "base", "checks": [
        {"name": "user_gain", "verdict": "passed"}, {"name": "global_drop", "verdict": "uninformative"}],
        "incumbent": {"verdict": "worse", "name": "registry:m_old", "summary": "worse on camera garage"},
        "promote": False, "promotion": "worse than the incumbent registry:m_old: worse on camera garage"})
    sentence = verdict_sentence(gate, None)
    assert sentence.startswith("Blessed: the tuned model passed 1 of the gate's 2 checks against the base model "
                               "it was fine-tuned from; the other 1 could not fail")
    assert "NOT promoted" in sentence and "worse on camera garage" in sentence
    view = incumbent_view(gate)
    assert view["verdict"] == "worse" and view["promote"] is False and view["promotion"] == gate.promotion_reason
    assert incumbent_view(None) is None


def test_unlabeled_finding_is_drawn_from_its_data_not_its_message(sample_datasets, tmp_path, monkeypatch):
    """The card's box and caption come from the finding's figures: a message in other words
    (another language, a reworded text) draws the same box."""
    from camtune.core import config
    from camtune.steps.report.page import RawDataset, finding_cards

    monkeypatch.chdir(tmp_path)
    params = config.load(PARAMS, {"data.user_dataset": str(sample_datasets.user)})
    ds = RawDataset(sample_datasets.user)
    iid = next(i for i, im in ds.images.items() if ds.safe_path(im) is not None)
    finding = {"severity": "warning", "rule": "UNLABELED_OBJECT", "message": "un chien sans étiquette",
               "image_id": iid, "annotation_id": None, "file": ds.images[iid]["file_name"],
               "data": {"label": "dog", "score": 0.87, "bbox": [4, 4, 40, 30], "best_iou": 0.0}}
    no_data = {**finding, "data": {}, "message": "the reference model sees a dog (score 0.87) at bbox [4, 4, 40, 30]"}
    out = tmp_path / "page"
    cards = finding_cards({"findings": [finding, no_data]}, ds, params, out)
    assert "a suggested unlabeled dog (dotted magenta)" in cards[0]["alt"] and cards[0]["data"]["score"] == 0.87
    # a message is never parsed back: without figures nothing is suggested
    assert "suggested" not in cards[1]["alt"]
    assert (out / cards[0]["src"]).read_bytes() != (out / cards[1]["src"]).read_bytes()


def test_failed_validation_page_shows_each_error_on_its_image(prefect_server, sample_datasets, tmp_path,
                                                              monkeypatch):
    """dvc stops at validate; `camtune report` then makes the page from what exists."""
    from camtune.core import config
    from camtune.steps import validate as validation
    from camtune.runners import step_runner as _cli
    from camtune.steps.report.flow import report_flow

    monkeypatch.chdir(tmp_path)
    ids = failed_dataset(sample_datasets.user, tmp_path / "user")
    sets = {"data.user_dataset": str(tmp_path / "user"), "data.global_pool": str(sample_datasets.global_pool),
            "publish.registry.root": str(tmp_path / "registry")}
    report = validation.validate(config.load(PARAMS, sets))
    assert not report.passed
    report.write(tmp_path / "artifacts/validate")
    assert _cli.run(report_flow, ["--params", PARAMS, *[f"--set={k}={v}" for k, v in sets.items()]]) == 0

    page = _check_page(tmp_path)
    text = " ".join(page.text)
    assert "No model: your dataset failed validation" in text and "Validation FAILED" in text
    errors = [f for f in report.to_dict()["findings"] if f["severity"] == "error"]
    assert {f["rule"] for f in errors} >= {"ORPHAN_ATTRIBUTE", "BOX_OUTSIDE", "FILE_MISSING"}
    articles = [a for a in page.find("article") if "sev-error" in a["class"]]
    assert len(articles) == len(errors)
    html = (tmp_path / "artifacts/report/index.html").read_text()
    for f in errors:
        assert f["message"] in html or f["message"].replace("'", "&#39;") in html
    imgs = {i["src"]: i["alt"] for i in page.find("img")}
    orphan_img, orphan_ann = ids["orphan"]
    assert any(f"Image {orphan_img} " in a and f"annotation {orphan_ann}" in a and "allowed parent" in a
               for a in imgs.values()), imgs
    outside_img, outside_ann = ids["outside"]
    assert any(f"Image {outside_img} " in a and f"annotation {outside_ann}" in a for a in imgs.values())
    # every error finding on an image that exists carries its thumbnail; the missing file says why
    html_cards = html.split('<article class="finding sev-error"')[1:]
    for card in html_cards:
        if f'data-image-id="{ids["missing"]}"' in card.split(">")[0]:
            assert "<img" not in card.split("</article>")[0] and "cannot be shown" in card
        elif "data-image-id" in card.split(">")[0]:
            assert "<img" in card.split("</article>")[0]
    assert not (tmp_path / "artifacts/evaluate").exists()  # nothing else was made up


def test_same_inputs_same_bytes(prefect_server, run_dir, monkeypatch):
    params, root = run_dir
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    _render(overrides=_overrides(params))
    first = {p.relative_to(root): p.read_bytes() for p in (root / "artifacts/report").rglob("*") if p.is_file()}
    _render(overrides=_overrides(params))
    second = {p.relative_to(root): p.read_bytes() for p in (root / "artifacts/report").rglob("*") if p.is_file()}
    assert first == second
    assert b"Generated 2026-01-01 00:00 UTC" in first[Path("artifacts/report/index.html")]


def test_lineage_diffs_params_against_the_previous_published_model(tmp_path, tiny_tflite, tiny_onnx, monkeypatch):
    """A real publish into a local registry, then a run with one param changed: the page's
    lineage names the previous model and the changed param, and the ids publish uses."""
    from camtune.core import config
    from camtune.steps.publish import release as publishing
    from camtune.contracts.registry import open_registry
    from camtune.contracts.verdict import Verdict
    from camtune.steps.report.page import lineage
    from tests.support.s3 import make_publish_inputs

    monkeypatch.chdir(tmp_path)
    before = config.load(PARAMS, {"publish.registry.root": str(tmp_path / "registry")})
    make_publish_inputs(tmp_path, tiny_tflite, user_id=before.user.id, onnx=tiny_onnx)
    registry = open_registry(before.publish.registry)
    receipt = publishing.upload(publishing.prepare(before, tmp_path / "staging"), registry)

    now = config.load(PARAMS, {"publish.registry.root": str(tmp_path / "registry"), "finetune.steps": 7})
    out = lineage(now, Verdict.from_dict({"baseline": f"registry:{receipt['model_id']}"}),
                  {"edgetpu": {"status": "compiled"},
                   "onnx": {"status": "built", "model_type": "yolonas", "supportedDetectors": ["onnx", "openvino"]}})
    assert out["previous_model"] == receipt["model_id"]
    assert [d["key"] for d in out["params_diff"]] == ["finetune.steps"]
    assert out["params_diff"][0]["previous"] == str(before.finetune.steps)
    assert out["params_diff"][0]["current"] == "7"
    # the same model files -> the id publish gave them; the base id publish recorded
    assert out["model_id"] == receipt["model_id"] and out["edgetpu_compiled"] and out["onnx_built"]
    assert out["base_id"] == registry.model(before.user.id, receipt["model_id"])["base_id"]
    assert out["git"] is not None and out["notes"] == []


def test_check_names_wrap_but_stay_escaped():
    from camtune.steps.report.page import wrap_names

    assert str(wrap_names("global.ap[license_plate]")) == "global.<wbr>ap<wbr>[license_plate]"
    assert str(wrap_names("x[<script>]")) == "x<wbr>[&lt;script&gt;]"
