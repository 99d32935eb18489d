"""The whole data-in path through `camtune ingest` (its main, under a real Prefect server):
Frigate on loopback -> suggest with a tiny model -> export-ls -> Label Studio's export -> import-ls
and the CVAT refusal without --job-completed."""
from __future__ import annotations

import json

from tests.support.frigate import FrigateServer, make_event, snapshot_bytes
from tests.steps.ingest.test_annotation_tools import ls_export_from_tasks
from tests.steps.ingest.test_suggest import build_fixed_detector

from camtune.core import config
from camtune.core.config import ROOT
from camtune.runners import cli


def test_frigate_to_verified_dataset(prefect_server, tmp_path, capsys):
    names = list(config.load(ROOT / "params.yaml").labels.names)
    (tmp_path / "model").mkdir()
    model = build_fixed_detector(tmp_path / "model" / "tiny.tflite", names)
    (tmp_path / "model" / "labelmap.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    root = tmp_path / "user"
    common = ["--params", str(ROOT / "params.yaml"), "--set", f"data.user_dataset={root}",
              "--set", f"ingest.out_dir={tmp_path / 'ingest'}", "--set", f"ingest.tools.export_dir={tmp_path / 'exports'}",
              "--set", f"ingest.tools.ls_document_root={tmp_path}", "--set", f"publish.registry.root={tmp_path / 'reg'}"]
    with FrigateServer() as srv:
        for i in range(3):
            srv.add(make_event(i, label=["person", "car", "bicycle"][i]), snapshot_bytes(320, 180, "WEBP", i))
        assert cli.main(["ingest", "frigate", "--url", srv.url, "--after", "2026-09-01", "--no-progress", *common]) == 0
    assert json.loads((tmp_path / "ingest" / "frigate_import.json").read_text())["dropped_unmapped"] == {"bicycle": 1}
    assert cli.main(["ingest", "suggest", "--model", str(model), "--no-progress", *common]) == 0
    ranking = json.loads((tmp_path / "ingest" / "ranking.json").read_text())["ranking"]
    assert len(ranking) == 3 and (tmp_path / "ingest" / "suggestions.md").is_file()
    assert cli.main(["ingest", "export-ls", *common]) == 0
    tasks = json.loads((tmp_path / "exports" / "label_studio" / "tasks.json").read_text())
    assert [t["data"]["camtune_image_id"] for t in tasks] == [e["image_id"] for e in ranking]
    export = tmp_path / "ls_export.json"
    export.write_text(json.dumps(ls_export_from_tasks(tasks, lambda i, t, r: (r, False))))  # all accepted
    assert cli.main(["ingest", "import-ls", str(export), *common]) == 0
    coco = json.loads((root / "annotations.json").read_text())
    assert all(i["verified"] for i in coco["images"])
    assert cli.main(["ingest", "import-ls", str(export), *common]) == 0      # again: nothing changes
    assert json.loads((tmp_path / "ingest" / "import_label_studio.json").read_text())["dataset_changed"] is False
    # CVAT: refuses to guess whether the job is done
    assert cli.main(["ingest", "export-cvat", *common]) == 0
    zpath = tmp_path / "exports" / "cvat" / "coco_1.0_annotations.zip"
    assert cli.main(["ingest", "import-cvat", str(zpath), *common]) == 1
    assert "--job-completed" in capsys.readouterr().err
    assert cli.main(["ingest", "nope"]) == 2
