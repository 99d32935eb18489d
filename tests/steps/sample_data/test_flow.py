"""The sample_data flow under a real Prefect server: writes both datasets, posts its counts."""
import json

from camtune.core import config
from camtune.core.dataset import load_dataset
from camtune.runners import step_runner as _cli
from camtune.steps.sample_data.flow import sample_data_flow

TINY = {"sample_data.global_images": 14, "sample_data.user_images": 10, "sample_data.user_images_in_pool": 4,
        "sample_data.global_users": 2}


def _overrides(tmp_path):
    return {**TINY, "sample_data.global_pool": str(tmp_path / "data/global"),
            "sample_data.users_dir": str(tmp_path / "data/users")}


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found


def test_flow_writes_both_datasets_and_posts_counts(prefect_server, tmp_path):
    # data.* name a user's real datasets: the flow writes only its own sample_data.* folders
    mine = {"data.global_pool": str(tmp_path / "mine/global"), "data.user_dataset": str(tmp_path / "mine/user")}
    summary = sample_data_flow(str(config.ROOT / "params.yaml"), {**_overrides(tmp_path), **mine})
    pool, user = load_dataset(tmp_path / "data/global"), load_dataset(tmp_path / "data/users/u_demo")
    assert len(pool.images) == 14 and len(user.images) == 10
    assert summary["datasets"]["user"]["images"] == 10 and summary["user_images_in_pool"] == 4
    assert summary["datasets"]["global_pool"]["labels"] == pool.annotations["label"].value_counts().reindex(
        pool.categories["name"], fill_value=0).to_dict()
    found = _artifact("sample-data")
    assert found and "| person |" in found[0].data and "u_demo/" in found[0].data
    # nothing but the two dataset folders was written
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["global", "users"]
    assert [p.name for p in (tmp_path / "data/users").iterdir()] == ["u_demo"]
    assert not (tmp_path / "mine").exists()


def test_cli_bad_params_exit_2_and_write_nothing(prefect_server, tmp_path, capsys):
    sets = [f"{k}={v}" for k, v in _overrides(tmp_path).items()] + ["sample_data.user_images_in_pool=11"]
    rc = _cli.run(sample_data_flow, ["--params", str(config.ROOT / "params.yaml"),
                                         *[a for s in sets for a in ("--set", s)]])
    assert rc == 2
    assert "user_images_in_pool" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_cli_refuses_to_overwrite_a_real_dataset(prefect_server, tmp_path, capsys):
    real = tmp_path / "data/users/u_demo"  # where the demo user's dataset would be written
    real.mkdir(parents=True)
    (real / "annotations.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    sets = [f"{k}={v}" for k, v in _overrides(tmp_path).items()]
    rc = _cli.run(sample_data_flow, ["--params", str(config.ROOT / "params.yaml"),
                                         *[a for s in sets for a in ("--set", s)]])
    assert rc == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert [p.name for p in real.iterdir()] == ["annotations.json"]
    assert not (tmp_path / "data/global").exists()
