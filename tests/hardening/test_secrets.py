"""Secrets never leave the process (issue 28, item 4): credentials in a URL are refused where a
URL enters, one redaction rule covers messages and logs, lineage holds no connection settings."""
from __future__ import annotations

import logging

import pytest

from camtune.core import config
from camtune.core.errors import StepFailed
from camtune.steps.ingest import frigate as fr
from camtune.core.redaction import RedactingFilter, redact

URL = "http://admin:hunter22@frigate:5000"


def test_userinfo_refused_in_params_and_client():
    with pytest.raises(config.ConfigError, match="has credentials in it") as e:
        config.load(config.ROOT / "params.yaml", {"ingest.frigate.url": URL})
    assert "hunter22" not in str(e.value) and "CAMTUNE_FRIGATE_PASSWORD" in str(e.value)
    with pytest.raises(config.ConfigError) as e:
        config.load(config.ROOT / "params.yaml", {"publish.registry.s3.endpoint_url": "https://k:s3cr3t@minio:9000"})
    assert "s3cr3t" not in str(e.value)
    # a secret typed into the wrong key is shown back redacted
    with pytest.raises(config.ConfigError) as e:
        config.load(config.ROOT / "params.yaml", {"ingest.frigate.page_size": URL})
    assert "hunter22" not in str(e.value)
    with pytest.raises(fr.FrigateError, match="credentials") as e:
        fr.FrigateClient(URL, retries=0)
    assert "hunter22" not in str(e.value)


def test_cli_refuses_before_a_flow_run_records_the_parameter(capsys):
    from camtune.runners import cli

    assert cli.main(["ingest", "frigate", "--url", URL]) == 2
    err = capsys.readouterr().err
    assert "has credentials in it" in err and "hunter22" not in err


def test_one_redaction_rule(monkeypatch):
    monkeypatch.setenv("CAMTUNE_FRIGATE_TOKEN", "tok-abcdef123")
    text = f"GET {URL}/api/events?token=zzz&x=1 failed; Authorization: Bearer abc.def.ghi; env tok-abcdef123"
    clean = redact(text)
    for secret in ("hunter22", "admin:", "zzz", "abc.def.ghi", "tok-abcdef123"):
        assert secret not in clean
    assert "frigate:5000/api/events" in clean
    assert "hunter22" not in str(StepFailed(f"cannot reach {URL}"))
    rec = logging.LogRecord("camtune", logging.INFO, __file__, 1, "fetching %s", (URL,), None)
    RedactingFilter().filter(rec)
    assert "hunter22" not in rec.getMessage()


def test_lineage_params_hold_no_connection_settings(tmp_path):
    params = config.load(config.ROOT / "params.yaml", {"ingest.frigate.url": "http://frigate:5000",
                                                       "publish.registry.kind": "s3",
                                                       "publish.registry.s3.bucket": "b",
                                                       "publish.registry.s3.endpoint_url": "http://minio:9000"})
    d = config.model_params(params)
    assert "ingest" not in d and "pipeline" not in d and "registry" not in d["publish"]
    assert d["training"] == params.training.model_dump(mode="json", by_alias=True) and d["user"]["id"]
    # an older lineage.json's params lose them too (the report's params table compares both)
    old = params.model_dump(mode="json", by_alias=True)
    old["ingest"]["frigate"]["url"] = URL
    assert "ingest" not in config.model_params(old) and "hunter22" not in repr(config.model_params(old))
