"""The evaluate_flow flow under a real Prefect server: outputs, verdict, bad input.

One tiny model is trained once (2 steps, 64 px) and used as both base and tuned: the flow and
its files are under test here, not the training (the gate's logic has its own tests)."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from camtune.core.config import ROOT
from camtune.core.errors import StepFailed

PARAMS = str(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_datasets):
    """A model_dir trained 2 steps (64 px) on a few images of the sample global pool."""
    from camtune.core import config
    from camtune.core.dataset import load_dataset
    from camtune.training import experiment, records, train

    tmp = tmp_path_factory.mktemp("evaluate-model")
    params = config.load(PARAMS, {"training.input_size": 64, "train_base.steps": 2,
                                  "train_base.batch_size": 2, "train_base.warmup_steps": 0,
                                  "train_base.checkpoint_every": 2, "training.log_every": 1})
    names = list(params.labels.names)
    pool = load_dataset(sample_datasets.global_pool).verified()
    part = records.Part(pool.subset(pool.images["id"][:6]))
    rs = records.write_records([part], tmp / "records", label_names=names, shards=1)
    exp = experiment.build_experiment_config(params, stage="base", model_dir=str(tmp / "model"),
                                             train_files=rs.files)
    train.run(exp, tmp / "model", label_names=names, stage="base", progress=None)
    return tmp / "model"


@pytest.fixture
def workspace(tmp_path, trained, sample_datasets, monkeypatch):
    """A repo-like folder with the contract files evaluate reads (datasets used in place, read-only)."""
    from camtune.core.dataset import load_dataset

    user_id = sample_datasets.params.user.id
    pool = load_dataset(sample_datasets.global_pool)
    others = pool.images[pool.images["user_id"] != user_id]
    # 5 verified images of other users + 1 unverified one (left out: not ground truth)
    ids = [*others.loc[others["verified"], "id"][:5], *others.loc[~others["verified"], "id"][:1]]
    user = load_dataset(sample_datasets.user).of_user(user_id).verified()
    for d in ("artifacts/train_base/model", "artifacts/finetune/model"):
        shutil.copytree(trained, tmp_path / d)
    (tmp_path / "artifacts/sample").mkdir(parents=True)
    (tmp_path / "artifacts/sample/global_eval.json").write_text(json.dumps(
        {"name": "global_eval", "source": str(sample_datasets.global_pool), "user_id": user_id,
         "image_ids": sorted(int(i) for i in ids), "count": len(ids)}))
    (tmp_path / "artifacts/finetune/holdout.json").write_text(json.dumps(
        {"user_id": user_id, "source": str(sample_datasets.user),
         "image_ids": sorted(int(i) for i in user.images["id"][:5])}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# the fixture's holdout has 5 images, under the gate's default min_images (10): judged anyway here
OVERRIDES = {"publish.registry.root": "registry", "evaluate.shards": 2, "evaluate.gate.min_images": 1}


def test_flow_writes_metrics_gate_filters_report_and_plots(prefect_server, workspace):
    from camtune.steps.evaluate.flow import evaluate_flow

    # floors no 2-step model reaches; tuned == base, so every relative check is exactly 0
    out = evaluate_flow(params_path=PARAMS, overrides={**OVERRIDES, "evaluate.gate.min_user_map50": 1.0,
                                                        "evaluate.gate.min_global_map50": 1.0})
    ev = workspace / "artifacts/evaluate"
    gate = json.loads((ev / "gate.json").read_text())
    assert gate["blessed"] is False and out["blessed"] is False and gate["baseline"] == "base"
    assert gate["verdict"] == out["verdict"] == "not_blessed"
    # a 2-step model finds nothing through Frigate's path either: the absolute floor refuses it
    assert gate["failed"] == gate["deciding"] == ["user_floor", "global_floor", "frigate_user_floor"]
    assert all({"name", "metric", "threshold", "point", "interval", "verdict", "why"} <= set(c)
               for c in gate["checks"])
    assert sorted((ev / "gate_plots").glob("*.png"))
    metrics = json.loads((ev / "metrics.json").read_text())
    assert set(metrics["tuned"]) == {"user", "global"}
    assert metrics["base"]["global"]["images"] == 5  # the unverified image is not ground truth
    assert metrics["tuned"]["user"]["map50"] is not None
    filters = yaml.safe_load((ev / "filters.yml").read_text())["objects"]
    assert "face" in filters["track"] and "threshold" not in filters["filters"]["face"]
    assert set(filters["filters"]["person"]) == {"min_score", "threshold"}
    report = (ev / "report.md").read_text()
    assert "Not blessed" in report and "`user_floor`" in report
    plots = sorted((ev / "plots").glob("pr_global_*.json"))
    assert plots and list((ev / "plots").glob("pr_user_*.json"))
    rec = json.loads(plots[0].read_text())
    assert len(rec) == 101 and set(rec[0]) == {"recall", "base", "tuned"}
    assert (ev / "details.json").exists()
    # Frigate-path figures next to COCO's, per-image tallies kept for resampling
    fp = metrics["tuned"]["user"]["frigate"]
    assert fp["objects"] > 0 and fp["regions"] >= 5 and 0 <= fp["recall"] <= 1
    assert fp["fixed_min_score"] == 0.5
    details = json.loads((ev / "details.json").read_text())
    images = details["frigate_path"]["tuned"]["user"]["advised"]["images"]
    assert len(images) == 5 and set(images[0]) == {"image_id", "camera", "objects", "hits", "regions",
                                                    "false_detections"}
    runs = json.loads((ev / "frigate_runs.json").read_text())
    assert set(runs) == {"base", "tuned"} and len(runs["tuned"]["global"]) == 5
    assert "## Frigate path" in report and "Tuned models score higher" not in report
    assert all(f["min_score"] >= 0.4 for f in filters["filters"].values())
    dets = {p.name: json.loads(p.read_text()) for p in (ev / "detections").glob("*.json")}
    assert set(dets) == {"base_user.json", "base_global.json", "tuned_user.json", "tuned_global.json"}
    assert all(set(d) == {"image_id", "category_id", "bbox", "score"} for d in dets["tuned_global.json"])
    assert {d["image_id"] for d in dets["tuned_global.json"]} <= set(json.loads(
        (workspace / "artifacts/sample/global_eval.json").read_text())["image_ids"])

    # floors at zero (cannot fail: uninformative) and a model equal to its baseline: no gain shown,
    # nothing worse: inconclusive, never blessed
    out = evaluate_flow(params_path=PARAMS, overrides={**OVERRIDES, "evaluate.gate.min_user_map50": 0.0,
                                                        "evaluate.gate.min_global_map50": 0.0,
                                                        "evaluate.gate.min_user_frigate_recall": 0.0})
    gate = json.loads((ev / "gate.json").read_text())
    assert out["verdict"] == gate["verdict"] == "inconclusive" and out["blessed"] is False
    checks = {c["name"]: c for c in gate["checks"]}
    # (a 2-step model's mAP may be 0, and a gain over 0 cannot be negative: then uninformative)
    assert checks["user_gain"]["interval"] == [0.0, 0.0]
    assert checks["user_gain"]["verdict"] in ("inconclusive", "uninformative")
    assert {"user_floor", "global_floor", "frigate_user_floor"} <= set(gate["uninformative"])


def _cli(argv):
    from camtune.runners import cli

    return cli.main(["evaluate", "--params", PARAMS, *[f"--set={k}={v}" for k, v in OVERRIDES.items()],
                                    *argv])


def test_missing_model_is_a_clear_error(prefect_server, workspace, capsys):
    shutil.rmtree(workspace / "artifacts/finetune/model")
    assert _cli([]) == StepFailed.exit_code
    err = capsys.readouterr().err
    assert "artifacts/finetune/model: model folder not found" in err and "dvc repro finetune" in err
    assert not (workspace / "artifacts/evaluate").exists()


def test_label_map_mismatch_is_a_clear_error(prefect_server, workspace, capsys):
    labels = workspace / "artifacts/train_base/model/labels.json"
    labels.write_text(json.dumps({"names": ["person", "car"]}))
    assert _cli([]) == StepFailed.exit_code
    err = capsys.readouterr().err
    assert "artifacts/train_base/model" in err and "differs from labels.names" in err


def test_empty_evaluation_set_is_a_clear_error(prefect_server, workspace, capsys):
    path = workspace / "artifacts/finetune/holdout.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "image_ids": []}))
    assert _cli([]) == StepFailed.exit_code
    assert "artifacts/finetune/holdout.json: the evaluation set is empty" in capsys.readouterr().err


def test_holdout_of_another_user_is_refused(prefect_server, workspace, capsys):
    assert _cli(["--set", "user.id=u_else"]) == StepFailed.exit_code
    assert "holdout of user" in capsys.readouterr().err
