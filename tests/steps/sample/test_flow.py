"""The sample flow on a tiny pool under a real Prefect server, its CLI, and the DVC stage."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.repo import copy_repo, dvc_env, git_commit_all
import yaml

from camtune.core import config
from camtune.contracts.artifacts import Manifest
from camtune.core.dataset import load_dataset

LABELS = config.load(config.ROOT / "params.yaml").labels.names


def write_coco(folder: Path, rows: list[tuple]) -> Path:
    """rows: (id, user, camera, verified, condition, [labels]) -> folder/annotations.json
    (the sample step reads annotations only, so no image files are needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    anns = [{"id": k, "image_id": r[0], "category_id": LABELS.index(lab) + 1, "bbox": [1, 1, 8, 8]}
            for k, (r, lab) in enumerate((r, lab) for r in rows for lab in r[5])]
    coco = {
        "images": [{"id": r[0], "file_name": f"images/{r[0]}.jpg", "width": 64, "height": 64,
                    "user_id": r[1], "camera": r[2], "captured_at": "2026-01-01T00:00:00Z",
                    "verified": r[3], "condition": r[4]} for r in rows],
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n, "attribute_of": []} for i, n in enumerate(LABELS)],
    }
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder


def tiny_pool(root: Path) -> tuple[Path, Path]:
    """8 users x 2 cameras x 10 images, every label present; u_demo's user dataset: 12 images."""
    rows, i = [], 0
    for u in range(8):
        for cam in ("front_door", "driveway"):
            for k in range(10):
                labels = [LABELS[(i + j) % len(LABELS)] for j in range(i % 3)]
                rows.append((i, "u_demo" if u == 0 else f"u{u}", cam, i % 13 != 0,
                             ["day", "night", "dusk", None][i % 4], labels))
                i += 1
    user_rows = [(1000 + k, "u_demo", "front_door", k != 0, "day", ["person"]) for k in range(12)]
    return write_coco(root / "global", rows), write_coco(root / "user", user_rows)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    pool, user = tiny_pool(tmp_path / "data")
    raw = yaml.safe_load((config.ROOT / "params.yaml").read_text())
    raw["user"]["id"] = "u_demo"
    raw["data"] = {"global_pool": "data/global", "user_dataset": "data/user"}
    raw["sample"].update(min_per_label=3, max_user_share=0.35, base_train_max_images=60,
                         replay_ratio=0.5, split_unit="camera", eval_fraction=0.3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_flow_writes_the_three_manifests_and_strata(sample_datasets, prefect_server, tmp_path,
                                                   monkeypatch):
    from prefect.artifacts import Artifact

    from camtune.steps.sample.flow import sample_flow

    monkeypatch.chdir(tmp_path)
    pool_dir, user_dir = str(sample_datasets.global_pool), str(sample_datasets.user)
    overrides = {"data.global_pool": pool_dir, "data.user_dataset": user_dir,
                 "sample.min_per_label": 3, "sample.split_unit": "camera", "sample.replay_ratio": 1.0}
    res = sample_flow(params_path=str(config.ROOT / "params.yaml"), overrides=overrides)
    out = tmp_path / "artifacts/sample"
    assert sorted(p.name for p in out.iterdir()) == ["base_train.json", "global_eval.json",
                                                     "replay.json", "strata.csv"]
    m = {n: Manifest.read(out / f"{n}.json") for n in ("base_train", "global_eval", "replay")}
    ids = {n: list(man.image_ids) for n, man in m.items()}
    pool = load_dataset(pool_dir)
    uid = sample_datasets.params.user.id
    users = pool.images.set_index("id")["user_id"]
    for name, man in m.items():
        assert man.get("name") == name and man.source == pool_dir
        assert man.get("count") == len(ids[name]) == res["counts"][name] > 0
        assert ids[name] == sorted(ids[name])
        # the consumers' contract; only verified images
        sub = man.subset()
        assert len(sub.images) == man.get("count") and sub.images["verified"].all()
    assert m["base_train"].get("user_id") is None and m["global_eval"].get("user_id") == uid
    assert uid not in set(users[ids["global_eval"]])
    assert uid not in set(users[ids["replay"]])
    user = load_dataset(user_dir)
    n_user_verified = int((user.images["verified"] & (user.images["user_id"] == uid)).sum())
    assert m["replay"].get("params")["user_verified"] == n_user_verified
    assert m["replay"].get("count") == min(round(n_user_verified), m["base_train"].get("count"))
    assert set(ids["replay"]) <= set(ids["base_train"])
    cams = pool.images.set_index("id").apply(lambda r: f"{r.user_id}/{r.camera}", axis=1)
    assert not set(cams[ids["base_train"]]) & set(cams[ids["global_eval"]])

    rows = list(csv.DictReader((out / "strata.csv").open()))
    assert {r["set"] for r in rows} == {"pool_verified", "base_train", "global_eval", "replay"}
    assert {r["dimension"] for r in rows} == {"label", "user", "camera", "condition"}
    base_users = {r["value"]: int(r["images"]) for r in rows
                  if r["set"] == "base_train" and r["dimension"] == "user"}
    assert sum(base_users.values()) == m["base_train"].get("count")

    table = Artifact.get("sample-strata")
    assert table is not None and table.type == "table"
    assert "global_eval" in json.dumps(table.data)
    assert Artifact.get("sample-summary") is not None

    # same pool + params: byte-identical outputs
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    sample_flow(params_path=str(config.ROOT / "params.yaml"), overrides=overrides)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _cli(*args, cwd):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(config.ROOT), "PREFECT_API_URL": PREFECT_API_URL.value()}
    return subprocess.run([sys.executable, "-m", "camtune", "sample", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_refuses_an_unknown_user_and_an_empty_pool(workspace, prefect_server):
    before = (workspace / "data/global/annotations.json").read_bytes()
    r = _cli("--set", "user.id=u_ghost", cwd=workspace)
    assert r.returncode == 1, r.stderr
    # Prefect logs the flow's exception; the CLI adds the one-line reason
    assert any(line.startswith("error: unknown user id 'u_ghost'") for line in r.stderr.splitlines()), r.stderr
    # an empty pool (in-process: the CLI path is the same as above)
    from camtune.steps.sample.draw import SamplingError
    from camtune.steps.sample.flow import sample_flow

    write_coco(workspace / "data/empty", [])
    with pytest.raises(SamplingError, match="data/empty/annotations.json: the global pool has no images"):
        sample_flow(params_path="params.yaml", overrides={"data.global_pool": "data/empty"})
    assert not (workspace / "artifacts/sample").exists()
    assert (workspace / "data/global/annotations.json").read_bytes() == before   # inputs untouched


# ------------------------------------------------------------------------------ dvc repro sample

def test_dvc_repro_sample_runs_then_skips(prefect_server, tmp_path):
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sample_data"].update(global_images=24, user_images=12, user_images_in_pool=4)
    params["sample"].update(min_per_label=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dvc_env(repo)
    git_commit_all(repo)

    # as the parent flow runs it: the figures come from the steps' own step files
    from camtune.contracts import artifacts
    from camtune.runners import orchestration

    first = orchestration.run_stage(repo, "sample", env=env)
    assert first.returncode == 0, first.output
    assert first.ran and "Running stage 'sample_data'" in first.output  # the sample data upstream too
    steps = [artifacts.read_step(s, repo) for s in ("sample_data", "sample")]
    assert all(s and s["compute_s"] > 0 for s in steps) and steps[0]["run"] == steps[1]["run"]
    assert first.compute == pytest.approx(sum(s["compute_s"] for s in steps))
    out = repo / "artifacts/sample"
    m = {n: json.loads((out / f"{n}.json").read_text()) for n in ("base_train", "global_eval", "replay")}
    assert all(man["count"] > 0 and man["source"] == params["data"]["global_pool"] for man in m.values())
    assert m["replay"]["params"]["user_verified"] > 0
    assert (out / "strata.csv").read_text().startswith("set,dimension,value,images")
    files = {p.name: p.read_bytes() for p in out.iterdir()}

    second = orchestration.run_stage(repo, "sample", env=env)
    assert second.returncode == 0, second.output
    assert not second.ran and "Running stage" not in second.output
    assert "Stage 'sample' didn't change, skipping" in second.output
    assert second.compute == 0  # the step files on disk are the first run's: not counted again
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
