"""A throwaway git copy of this repository, for tests (and benchmarks) that run DVC or the
pipeline the way a user would, without touching the real checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_repo(dest: Path) -> Path:
    """The repository's files as git sees them (tracked + untracked-not-ignored)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def git_commit_all(repo: Path, message: str = "copy") -> None:
    """Make `repo` a git repository with everything in it committed (DVC needs git)."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def dvc_env(repo: Path) -> dict:
    """Environment for `dvc repro` in `repo`: steps report to the session's Prefect test server and
    import this copy's code."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(repo)}
    env.pop("PYTHONSAFEPATH", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
