import json

import pytest
import yaml

from camtune.core import config


def _raw():
    return yaml.safe_load(open(config.ROOT / "params.yaml"))


def test_repo_params_load():
    p = config.load(config.ROOT / "params.yaml")
    assert p.labels.names[0] == "person"
    assert p.validate.min_new_verified == 10
    assert p.labels.label_map["0"] == "person"


def test_committed_schema_matches_models():
    committed = json.loads(config.SCHEMA_PATH.read_text())
    assert committed == json.loads(json.dumps(config.json_schema(), sort_keys=True))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["validate"].update(bogus=1), "validate.bogus: unknown key"),
        (lambda r: r["sample"].update(eval_fraction="a lot"), "sample.eval_fraction:"),
        (lambda r: r["train_base"].pop("steps"), "train_base.steps: missing value"),
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
    p = config.load(config.ROOT / "params.yaml", {"user.id": "u_other", "train_base.steps": 3})
    assert p.user.id == "u_other" and p.train_base.steps == 3


def test_renamed_sections_still_load_with_a_deprecation_line(tmp_path, capsys):
    """One name per step: training.base is now train_base, training.finetune is finetune."""
    raw = yaml.safe_load((config.ROOT / "params.yaml").read_text())
    raw["training"]["base"] = raw.pop("train_base")
    raw["training"]["finetune"] = raw.pop("finetune")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(raw))
    p = config.load(old, {"training.finetune.steps": 7})
    assert p.train_base == config.load(config.ROOT / "params.yaml").train_base and p.finetune.steps == 7
    err = capsys.readouterr().err
    assert "the section training.base is now train_base" in err
    assert "--set training.finetune.steps: the key is now finetune.steps" in err
    raw["train_base"] = raw["training"]["base"]
    old.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match="both training.base .* and train_base are set"):
        config.load(old)


def test_the_public_import_section_moved_to_ingest_public(tmp_path, capsys):
    """ingest.public (under the ingest job) is now the ingest_public step's own section."""
    raw = yaml.safe_load((config.ROOT / "params.yaml").read_text())
    raw["ingest"]["public"] = raw.pop("ingest_public")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(raw))
    p = config.load(old, {"ingest.public.max_images": 5})
    assert p.ingest_public.max_images == 5 and p.ingest_public.map["truck"] == "car"
    err = capsys.readouterr().err
    assert "the section ingest.public is now ingest_public" in err
    assert "--set ingest.public.max_images: the key is now ingest_public.max_images" in err
    assert "ingest_public" not in config.model_params(p)   # where data comes from, not the model
