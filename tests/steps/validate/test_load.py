"""Loading an untrusted annotations.json: broken records become findings and nulls, never crashes."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camtune.steps.validate.geometry import check_containment
from camtune.steps.validate.load import load, sanitize, schema_findings
from camtune.steps.validate.tables import annotation_frame, category_frame, image_frame

from .builders import PARENTS

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.text(max_size=3))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                      max_leaves=8)
image = st.fixed_dictionaries({}, optional={k: values | scalars for k in (
    "id", "file_name", "width", "height", "user_id", "camera", "verified", "sha256", "condition")})
ann = st.fixed_dictionaries({}, optional={"id": values, "image_id": values, "category_id": values,
                                          "bbox": st.lists(scalars, max_size=5) | values})
cat = st.fixed_dictionaries({}, optional={"id": values, "name": values, "attribute_of": values})
coco = st.one_of(values, st.fixed_dictionaries({}, optional={
    "images": st.lists(image | values, max_size=4), "annotations": st.lists(ann | values, max_size=5),
    "categories": st.lists(cat | values, max_size=3)}))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=coco)
def test_any_json_loads_into_tables_without_crashing(tmp_path, raw):
    (tmp_path / "annotations.json").write_text(json.dumps(raw))
    loaded, findings = load(tmp_path)
    assert loaded is not None
    assert all(f.rule == "SCHEMA" for f in findings)
    anns = annotation_frame(loaded.annotations, loaded.images, loaded.categories)
    image_frame(loaded.images), category_frame(loaded.categories)
    assert len(anns) == len(loaded.annotations)
    check_containment(loaded.annotations, PARENTS, 0.1)


def test_sanitize_blanks_wrong_types_and_keeps_good_ones():
    clean = sanitize({"images": [{"id": 1, "width": "64", "height": 48.0, "verified": "yes"}, 7],
                      "annotations": [{"id": True, "image_id": 1, "bbox": [1, "2", None, 4.5]}],
                      "categories": [{"id": 1, "name": "person", "attribute_of": ["x", 3]}]})
    [img] = clean["images"]
    assert (img["id"], img["width"], img["height"], img["verified"]) == (1, None, 48, False)
    assert clean["annotations"][0]["id"] is None and clean["annotations"][0]["bbox"] == [1, None, None, 4.5]
    assert clean["categories"][0]["attribute_of"] == ["x"]


def test_schema_findings_name_ids():
    raw = {"images": [{"id": 5, "file_name": "a.jpg"}], "annotations": [{"id": 9, "image_id": 5, "bbox": []}],
           "categories": [{"id": 1, "name": "person"}]}
    found = schema_findings(raw)
    assert {(f.image_id, f.annotation_id) for f in found} == {(5, None), (5, 9)}


def test_missing_and_invalid_json(tmp_path):
    assert [f.rule for f in load(tmp_path)[1]] == ["ANNOTATIONS_UNREADABLE"]
    (tmp_path / "annotations.json").write_bytes(b"\xff\xfe")
    loaded, findings = load(tmp_path)
    assert loaded is None and "not valid JSON" in findings[0].message
