"""The report in a real browser: Debian's headless Chromium loads artifacts/report/index.html
from file://, at 1280x800: no console errors, every image decoded, the verdict above the fold."""
from __future__ import annotations

import json

import pytest

from tests.steps.report.browser import Browser, chromium
from tests.steps.report.conftest import PARAMS

# every image loaded: lazy ones are switched to eager and awaited, then measured
IMAGES = """(async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, complete: i.complete}));
})()"""
VERDICT = """(() => {
  const el = document.getElementById('verdict-sentence');
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return {top: r.top, bottom: r.bottom, height: r.height, text: el.textContent.trim(),
          visible: s.visibility === 'visible' && s.display !== 'none' && parseFloat(s.opacity) > 0,
          scrollY: window.scrollY, vh: window.innerHeight, vw: window.innerWidth};
})()"""


@pytest.fixture
def browser():
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it "
                    "when it can)")
    b = Browser(binary, 1280, 800)
    try:
        yield b
    finally:
        b.close()


def test_report_in_headless_chromium(prefect_server, run_dir, browser, tmp_path):
    from PIL import Image

    from camtune.steps.report.flow import report_flow

    params, root = run_dir
    out = report_flow(params_path=PARAMS, overrides={
        "data.user_dataset": params.data.user_dataset, "data.global_pool": params.data.global_pool,
        "publish.registry.root": params.publish.registry.root})
    index = root / "artifacts/report/index.html"
    browser.load(index.resolve().as_uri())

    verdict = browser.evaluate(VERDICT)
    assert (verdict["vw"], verdict["vh"]) == (1280, 800)
    assert verdict["visible"] and verdict["scrollY"] == 0 and verdict["height"] > 0
    assert 0 <= verdict["top"] and verdict["bottom"] <= 800, verdict
    assert verdict["text"] == out["sentence"]
    gate = json.loads((root / "artifacts/evaluate/gate.json").read_text())
    prefix = {"blessed": "Blessed", "not_blessed": "Not blessed", "inconclusive": "Inconclusive"}
    assert verdict["text"].startswith(prefix[gate.get("verdict", "blessed" if gate["blessed"] else "not_blessed")])

    shot = browser.screenshot(tmp_path / "report.png")
    with Image.open(shot) as im:
        assert im.size == (1280, 800)

    images = browser.evaluate(IMAGES)
    assert len(images) == len(list((root / "artifacts/report").rglob("*.jpg"))) + \
        len(list((root / "artifacts/report").rglob("*.png")))
    broken = [i["src"] for i in images if not (i["complete"] and i["w"] > 0)]
    assert not broken, f"images not loaded: {broken}"
    assert browser.errors() == []
