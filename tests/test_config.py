import json

import pytest
import yaml

from camtune.core import config


def _raw():
    return yaml.safe_load(open(config.ROOT / "params.yaml"))


def test_repo_params_load():
    p = config.load(config.ROOT / "params.yaml")
    assert p.labels.names[0] == "person"
    assert p.validation.min_new_verified == 10
    assert p.labels.label_map["0"] == "person"


def test_committed_schema_matches_models():
    committed = json.loads(config.SCHEMA_PATH.read_text())
    assert committed == json.loads(json.dumps(config.json_schema(), sort_keys=True))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["validate"].update(bogus=1), "validate.bogus: unknown key"),
        (lambda r: r["sample"].update(eval_fraction="a lot"), "sample.eval_fraction:"),
        (lambda r: r["training"]["base"].pop("steps"), "training.base.steps: missing value"),
        (lambda r: r.pop("export"), "export: missing value"),
        (lambda r: r["user"].update(id="../evil"), "user.id:"),
        (lambda r: r["labels"]["attribute_parents"].update(face=["ghost"]), "ghost"),
    ],
)
def test_bad_params_name_the_dotted_key(tmp_path, mutate, expected):
    raw = _raw()
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_overrides_apply_dotted_keys():
    p = config.load(config.ROOT / "params.yaml", {"user.id": "u_other", "training.base.steps": 3})
    assert p.user.id == "u_other" and p.training.base.steps == 3
