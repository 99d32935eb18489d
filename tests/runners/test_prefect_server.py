"""Steps under `dvc repro` with no PREFECT_API_URL share one local Prefect server
(camtune/runners/prefect_server.py) instead of each starting Prefect's temporary one, and a clean run
prints no ERROR line (telemetry off by default)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.repo import copy_repo, git_commit_all, run

from camtune.runners import prefect_server

ERROR_LINE = re.compile(r"\bERROR\b")


def _env_without_api(home: Path, repo: Path | None = None, **extra) -> dict:
    """A user's environment: no Prefect API configured, telemetry settings left to camtune's
    defaults (conftest turns analytics off for the session; a user has no such variable)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK",
                        "PYTHONSAFEPATH")}
    env.update(PREFECT_HOME=str(home), DVC_NO_ANALYTICS="1", **extra)
    env.pop("PREFECT_LOGGING_LEVEL", None)  # Prefect's INFO lines too: none of them may say ERROR
    if repo is not None:
        env["PYTHONPATH"] = str(repo)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not prefect_server._alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_two_stages_back_to_back_share_one_server_and_print_no_error(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    from camtune.runners.orchestration import set_params

    set_params(repo, {"sample_data.global_images": 24, "sample_data.user_images": 12,
                      "sample_data.user_images_in_pool": 4, "validate.min_new_verified": 1})
    git_commit_all(repo)
    home = tmp_path / "prefect-home"
    env = _env_without_api(home, repo)
    try:
        # sample_data then validate (validate reads what sample_data wrote): two step processes
        r = run([sys.executable, "-m", "dvc", "repro", "validate"], repo, env)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "Running stage 'sample_data'" in out and "Running stage 'validate'" in out, out
        assert len(re.findall(r"camtune: step compute", out)) == 2, out
        assert json.loads((repo / "artifacts/validate/report.json").read_text())["passed"] is True
        errors = [ln for ln in out.splitlines() if ERROR_LINE.search(ln)]
        assert not errors, "\n".join(errors)
        # Prefect's own "Starting temporary server" never happened: one shared server did the work
        assert "temporary server" not in out, out
        log = (home / "camtune-server.log").read_text()
        assert log.count("camtune shared Prefect server pid") == 1, log
        assert not [ln for ln in log.splitlines() if ERROR_LINE.search(ln)], log
        state = prefect_server.status(home)
        assert state and state["healthy"] and state["users"] == [], state  # steps gone, server kept

        # both flow runs are in that server
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: state["url"]}):
            with get_client(sync_client=True) as client:
                names = {client.read_flow(fr.flow_id).name for fr in client.read_flow_runs()}
        assert {"sample_data", "validate"} <= names, names
    finally:
        st = prefect_server.status(home)
        prefect_server.stop(home)
    assert st is None or _wait_gone(st["pid"], 20)


def test_server_stops_by_itself_when_idle(tmp_path):
    home = tmp_path / "prefect-home"
    env = _env_without_api(home, CAMTUNE_PREFECT_SERVER_IDLE_TIMEOUT="2")
    code = "from camtune.runners import prefect_server as s; print(s.api_url_for_step())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("http://127.0.0.1:"), r.stdout
    state = json.loads((home / "camtune-server.json").read_text())
    # the only user (that process) is gone: idle after 2 s, it stops and removes its state file
    assert _wait_gone(state["pid"], 60), (home / "camtune-server.log").read_text()
    assert not (home / "camtune-server.json").exists()
    assert "idle for 2 s, stopping" in (home / "camtune-server.log").read_text()


def test_a_configured_api_or_ephemeral_mode_starts_nothing(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    monkeypatch.setenv("DO_NOT_TRACK", "1")  # apply_quiet_defaults sets it; keep it test-local
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_HOME: str(tmp_path)}):
        assert prefect_server.api_url_for_step() is None
    monkeypatch.setenv("CAMTUNE_PREFECT_SERVER", "ephemeral")
    with temporary_settings(updates={PREFECT_HOME: str(tmp_path)}):
        assert prefect_server.api_url_for_step() is None
    monkeypatch.setenv("CAMTUNE_PREFECT_SERVER", "bogus")
    with pytest.raises(prefect_server.ServerError, match="CAMTUNE_PREFECT_SERVER='bogus'"):
        prefect_server.api_url_for_step()
    assert not list(tmp_path.iterdir())
