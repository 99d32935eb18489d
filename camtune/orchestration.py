"""The pieces the parent flow is made of: which users are due, a per-user workspace, and running
one DVC stage there so that `dvc.lock` stays true and DVC decides what to skip.

Isolation: each user gets a git worktree of the repository (`pipeline.workspaces/<user_id>`),
sharing the main DVC cache, so two users' runs never overwrite each other's params, dvc.lock or
artifacts, and unchanged stages are restored from the cache instead of recomputed.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from camtune import artifacts
from camtune.config import SAFE_SEGMENT, Params
from camtune.errors import StepFailed

# Pipeline order (dvc.yaml's stages; sample_data only exists for the bundled sample data)
STAGES = list(artifacts.OUTS)


@dataclass(frozen=True)
class StageResult:
    stage: str
    ran: bool            # False when DVC found nothing changed
    returncode: int
    output: str
    seconds: float       # wall time of the whole `dvc repro` call
    compute: float = 0.0  # time inside the steps' own flows (their artifacts/<stage>.step.json)


# ---------------------------------------------------------------- who is due


def new_verified_counts(images: pd.DataFrame, trained: dict[str, set]) -> pd.Series:
    """Verified images per user that are not in the lineage of the user's newest model.

    `images` is a dataset's images table; `trained` maps user id -> image ids of their newest
    published model (absent: first model, every verified image counts).
    """
    verified = images.loc[images["verified"], ["user_id", "id"]]
    if verified.empty:
        return pd.Series(dtype="int64")
    seen = pd.Series(
        [int(i) in trained.get(u, ()) for u, i in zip(verified["user_id"], verified["id"])],
        index=verified.index, dtype=bool,
    )
    return verified.loc[~seen].groupby("user_id").size().sort_index()


def due_users(counts: pd.Series, min_new: int) -> list[str]:
    """Users with at least `min_new` new verified images, unsafe ids left out (never a path)."""
    return [u for u, n in counts.items() if n >= min_new and SAFE_SEGMENT.match(str(u))]


# ---------------------------------------------------------------- workspaces


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check)


def repo_root(start: Path | None = None) -> Path:
    out = _git(start or Path.cwd(), "rev-parse", "--show-toplevel", check=False)
    if out.returncode != 0:
        raise StepFailed(f"{start or Path.cwd()}: not inside a git repository (the pipeline needs one for DVC)")
    return Path(out.stdout.strip())


def prepare_workspace(repo: Path, workspaces: str, user_id: str) -> Path:
    """A git worktree of `repo` at its HEAD for this user, sharing repo's DVC cache.

    Runs use what is committed: that is what a scheduled deployment runs, and it makes every
    model traceable to a git revision.
    """
    if not SAFE_SEGMENT.match(user_id):
        raise StepFailed(f"user id {user_id!r} is not a safe path segment")
    root = (repo / workspaces).resolve()
    ws = root / user_id
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    if not (ws / ".git").exists():
        root.mkdir(parents=True, exist_ok=True)
        _git(repo, "worktree", "prune")
        _git(repo, "worktree", "add", "--force", "--detach", str(ws), head)
    else:
        _git(ws, "checkout", "--force", "--detach", head)
    # The user's last recorded dvc.lock (if any) on top of HEAD: DVC then re-runs only what
    # changed since that user's last run, instead of what changed since the lock on HEAD.
    branch = f"camtune-runs/{user_id}"
    if _git(repo, "rev-parse", "--verify", "--quiet", branch, check=False).returncode == 0:
        _git(ws, "checkout", branch, "--", "dvc.lock", check=False)
    cache = repo / ".dvc" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "cache.dir", str(cache)],
                   cwd=ws, check=True, capture_output=True)
    return ws


def set_params(workspace: Path, overrides: dict) -> None:
    """Write dotted-key overrides into the workspace's params.yaml, keeping its comments."""
    if not overrides:
        return
    from ruamel.yaml import YAML

    yaml = YAML()
    path = workspace / "params.yaml"
    doc = yaml.load(path.read_text())
    for dotted, value in overrides.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    with open(path, "w") as fh:
        yaml.dump(doc, fh)


_RAN = re.compile(r"Running stage '([^']+)'")


def run_stage(workspace: Path, stage: str, env: dict | None = None) -> StageResult:
    """`dvc repro <stage>` in the workspace: DVC skips it when nothing changed, runs what it
    needs upstream that is missing (e.g. the bundled sample data), and records it in dvc.lock."""
    import time

    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex  # the steps tag their step files with it
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", stage],
        cwd=workspace, capture_output=True, text=True,
        env={**os.environ, **(env or {}), artifacts.RUN_ENV: run_id,
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = proc.stdout + proc.stderr
    ran_stages = _RAN.findall(output)  # this stage and whatever DVC ran upstream of it
    ran = stage in ran_stages or proc.returncode != 0
    steps = [artifacts.read_step(s, workspace, run_id) for s in dict.fromkeys(ran_stages)]
    compute = sum(float(s.get("compute_s", 0.0)) for s in steps if s)
    return StageResult(stage, ran, proc.returncode, output, time.perf_counter() - t0, compute)


def stage_error(result: StageResult) -> str:
    """The step's own message (what flows._cli printed as `error: ...`), not DVC's wrapper text."""
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    own = [ln for ln in lines if ln.startswith("error: ")]
    if own:
        first = lines.index(own[0])
        return "\n".join(ln for ln in lines[first:first + 12] if not ln.startswith("ERROR: failed to reproduce"))
    return "\n".join(lines[-12:])


def record_run(workspace: Path, user_id: str, message: str) -> str | None:
    """Commit the run's params.yaml + dvc.lock on branch camtune-runs/<user> (traceability)."""
    branch = f"camtune-runs/{user_id}"
    _git(workspace, "add", "params.yaml", "dvc.lock", check=False)
    if _git(workspace, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return _git(workspace, "rev-parse", "HEAD").stdout.strip()
    _git(workspace, "commit", "-q", "-m", message)
    sha = _git(workspace, "rev-parse", "HEAD").stdout.strip()
    _git(workspace, "branch", "-f", branch, sha)
    return sha
