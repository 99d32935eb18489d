"""Never delete what camtune did not write (issue 28, item 5): the exports' --out folder and the
public import's pool folder."""
from __future__ import annotations

import json

import pytest

from camtune.core import atomic, config
from camtune.core.dataset import DatasetError
from camtune.steps.ingest import IngestError, load_coco
from camtune.steps.ingest import cvat, label_studio
from camtune.steps.ingest_public import public_coco

from tests.steps.ingest.builders import write_verified_dataset
from tests.steps.ingest_public.test_ingest_public import make_source, params as public_params


@pytest.fixture
def params(tmp_path):
    return config.load(config.ROOT / "params.yaml", {"data.user_dataset": str(tmp_path / "user")})


def _exports(tmp_path, params, out):
    root = tmp_path / "user"
    write_verified_dataset(root, params)
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(root, names, parents)
    return [lambda: cvat.write_cvat_export(root, coco, [], out, names, parents),
            lambda: label_studio.write_ls_export(root, coco, [], None, out, model_version="m", url_prefix="/d?d=",
                                          document_root=str(tmp_path), label_names=names,
                                          attribute_parents=parents)]


@pytest.mark.parametrize("which", [0, 1])
def test_export_out_never_replaces_a_user_folder(tmp_path, params, which):
    out = tmp_path / "Documents"
    (out / "thesis").mkdir(parents=True)
    (out / "thesis.tex").write_text("years of work")
    write = _exports(tmp_path, params, out)[which]
    with pytest.raises(IngestError, match=r"Documents: exists, is not empty \(thesis, thesis.tex\)"):
        write()
    assert (out / "thesis.tex").read_text() == "years of work" and sorted(p.name for p in out.iterdir()) == \
        ["thesis", "thesis.tex"]
    # a file given as --out is not a folder of ours either
    with pytest.raises(IngestError, match="not a folder camtune wrote"):
        _exports(tmp_path, params, out / "thesis.tex")[which]()


@pytest.mark.parametrize("which", [0, 1])
def test_export_out_replaces_its_own_folder_and_an_empty_one(tmp_path, params, which):
    out = tmp_path / "empty"
    out.mkdir()
    write = _exports(tmp_path, params, out)[which]
    write()
    assert json.loads((out / atomic.OWNER_FILE).read_text())["writer"].startswith("export-")
    write()  # ours: replaced
    assert (out / atomic.OWNER_FILE).is_file()


def test_export_recognises_an_older_export_without_the_owner_file(tmp_path, params):
    out = tmp_path / "cvat"
    (out / "annotations").mkdir(parents=True)
    (out / "images").mkdir()
    for f in ("coco_1.0_annotations.zip", "cvat_labels.json"):
        (out / f).write_text("{}")
    _exports(tmp_path, params, out)[0]()
    assert (out / atomic.OWNER_FILE).is_file()
    # ...but an "images" folder alone is a user's, never an old export
    pics = tmp_path / "pics"
    (pics / "images").mkdir(parents=True)
    with pytest.raises(IngestError, match="has no .camtune-output.json"):
        _exports(tmp_path, params, pics)[0]()


def test_public_import_removes_only_files_it_wrote(tmp_path):
    src, imgs = make_source(tmp_path / "src")
    p = public_params(tmp_path, src, imgs, **{"ingest_public.max_images": 3})
    pool = tmp_path / "data" / "public" / "tiny"
    # a folder that is not a pool: refused, nothing touched
    (pool / "images").mkdir(parents=True)
    (pool / "images" / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(DatasetError, match="has no .camtune-output.json"):
        public_coco.ingest(p.ingest_public, p.labels, progress=False)
    assert (pool / "images" / "holiday.jpg").read_bytes() == b"mine"
    (pool / "images" / "holiday.jpg").unlink()
    (pool / "images").rmdir()
    first = public_coco.ingest(p.ingest_public, p.labels, progress=False)
    # a user's file dropped into the pool later, then a plan with fewer images
    (pool / "images" / "holiday.jpg").write_bytes(b"mine")
    fewer = public_params(tmp_path, src, imgs, **{"ingest_public.max_images": 2})
    s = public_coco.ingest(fewer.ingest_public, fewer.labels, progress=False)
    assert s["images_removed"] == first["images"] - 2
    assert (pool / "images" / "holiday.jpg").read_bytes() == b"mine"
    listed = json.loads((pool / atomic.OWNER_FILE).read_text())["files"]
    assert sorted(listed) == sorted(i["file_name"] for i in json.loads((pool / "annotations.json").read_text())["images"])


@pytest.mark.parametrize("flow", ["validate", "report"])
def test_report_and_validate_out_dir_never_replace_a_user_folder(tmp_path, flow):
    """`--out_dir` of validate and the report: a user's folder is refused before any work."""
    from camtune.core.errors import StepFailed
    from camtune.steps.report import flow as report
    from camtune.steps.validate import flow as validate

    fn = {"validate": validate.validate_flow, "report": report.report_flow}[flow].fn
    out = tmp_path / "Documents"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(StepFailed, match="has no .camtune-output.json"):
        fn(params_path=str(config.ROOT / "params.yaml"), out_dir=str(out))
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
