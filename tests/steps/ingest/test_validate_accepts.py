"""validate takes what ingest writes: unverified images, `source`, `origin` and `score`."""
from __future__ import annotations

import json

from camtune.core import config
from camtune.steps.validate import validate

from .test_annotation_tools import dataset  # noqa: F401  (the fixture)


def test_validate_accepts_ingest_fields(tmp_path, dataset):  # noqa: F811
    params = config.load(config.ROOT / "params.yaml", {
        "data.user_dataset": str(dataset), "publish.registry.root": str(tmp_path / "reg"),
        "validate.min_new_verified": 1})
    report = validate(params)
    errors = [f for r in report.checks.values() for f in r.findings if f.severity == "error"]
    assert not errors, errors
    assert report.counts["images"] == 5 and report.counts["verified_images"] == 1
    # the schema still refuses what it did before, and a bad origin
    coco = json.loads((dataset / "annotations.json").read_text())
    coco["annotations"][1]["origin"] = "guess"
    coco["annotations"][2]["score"] = 1.5
    (dataset / "annotations.json").write_text(json.dumps(coco))
    report = validate(params)
    schema = [f.message for f in report.checks["schema"].findings]
    assert any("'guess' is not one of" in m for m in schema) and any("1.5 is greater than" in m for m in schema)
