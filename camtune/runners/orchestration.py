"""The pieces the parent flow is made of: which users are due, a per-user workspace, and running
one DVC stage there so that `dvc.lock` stays true and DVC decides what to skip.

Isolation: each user gets a git worktree of this host's checkout (`pipeline.workspaces/<user_id>`),
sharing this checkout's DVC cache, so two users' runs never overwrite each other's params, dvc.lock
or artifacts, and unchanged stages are restored from the cache instead of recomputed. With
`pipeline.remote.url` set, hosts share state only through the object store (camtune/runners/remote.py):
the user's dvc.lock is restored from it, stages run with `dvc repro --pull`, and each finished
stage is pushed before it is recorded.
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

from camtune.contracts import artifacts
from camtune.runners import remote
from camtune.core.config import SAFE_SEGMENT, Params, RemoteParams
from camtune.core.errors import StepFailed

# Pipeline order (dvc.yaml's stages; sample_data only exists for the bundled sample data)
STAGES = list(artifacts.OUTS)
# Stages whose inputs do not depend on the user: with a remote, built once per DVC stage key by
# whichever worker gets there first, then restored everywhere (the bundled world and the base).
SHARED_STAGES = ("sample_data", "train_base")


@dataclass(frozen=True)
class StageResult:
    stage: str
    ran: bool            # False when DVC found nothing changed
    returncode: int
    output: str
    seconds: float       # wall time of the whole `dvc repro` call
    compute: float = 0.0  # time inside the steps' own flows (their artifacts/<stage>.step.json)
    ran_stages: tuple[str, ...] = ()  # every stage DVC ran for this call (upstream ones too)


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


def prepare_workspace(repo: Path, workspaces: str, user_id: str, rp: RemoteParams | None = None) -> Path:
    """A git worktree of `repo` at its HEAD for this user, sharing repo's DVC cache.

    Runs use what is committed: that is what a scheduled deployment runs, and it makes every
    model traceable to a git revision. With a remote (`rp.url`), the user's dvc.lock comes from
    the object store (whichever host ran them last) and DVC's default remote is the store.
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
    cache = repo / ".dvc" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "cache.dir", str(cache)],
                   cwd=ws, check=True, capture_output=True)
    # The user's last recorded dvc.lock (if any) on top of HEAD: DVC then re-runs only what
    # changed since that user's last run, instead of what changed since the lock on HEAD.
    if rp is not None and rp.url:
        remote.configure_dvc(ws, rp)
        remote.SharedState(rp).restore_current(user_id, ws)
    else:
        branch = f"camtune-runs/{user_id}"
        if _git(repo, "rev-parse", "--verify", "--quiet", branch, check=False).returncode == 0:
            _git(ws, "checkout", branch, "--", "dvc.lock", check=False)
    return ws


def worker_checkout() -> dict:
    """Deployment pull step (prefect.yaml): run flows in this worker's own checkout, named by the
    worker's CAMTUNE_CHECKOUT (each host clones the repository where it likes; nothing is shared)."""
    path = os.environ.get("CAMTUNE_CHECKOUT")
    if not path or not (Path(path) / "dvc.yaml").is_file():
        raise StepFailed(f"CAMTUNE_CHECKOUT={path!r}: start the worker with CAMTUNE_CHECKOUT set to its camtune "
                         "checkout (a folder with dvc.yaml), e.g. CAMTUNE_CHECKOUT=$PWD prefect worker start ...")
    return {"directory": str(Path(path).resolve())}


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


def run_stage(workspace: Path, stage: str, env: dict | None = None, pull: bool = False) -> StageResult:
    """`dvc repro <stage>` in the workspace: DVC skips it when nothing changed, runs what it
    needs upstream that is missing (e.g. the bundled sample data), and records it in dvc.lock.
    `pull`: outputs of stages that are done but absent here (run on another host) come from the
    DVC remote instead of being recomputed."""
    import time

    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex  # the steps tag their step files with it
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", *(["--pull"] if pull else []), stage],
        cwd=workspace, capture_output=True, text=True,
        env={**os.environ, **(env or {}), artifacts.RUN_ENV: run_id,
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = proc.stdout + proc.stderr
    ran_stages = _RAN.findall(output)  # this stage and whatever DVC ran upstream of it
    ran = stage in ran_stages or proc.returncode != 0
    steps = [artifacts.read_step(s, workspace, run_id) for s in dict.fromkeys(ran_stages)]
    compute = sum(float(s.get("compute_s", 0.0)) for s in steps if s)
    return StageResult(stage, ran, proc.returncode, output, time.perf_counter() - t0, compute,
                       tuple(dict.fromkeys(ran_stages)))


def uses_sample_data(params: Params) -> bool:
    """The run reads the bundled synthetic world (generated by the sample_data stage)."""
    return Path(params.data.global_pool) == Path(params.sample_data.global_pool)


def run_shared_stage(workspace: Path, stage: str, rp: RemoteParams, lock, env: dict | None = None,
                     by: dict | None = None) -> StageResult:
    """A stage whose output every user shares (the base): built once per DVC stage key across all
    hosts, restored from the store everywhere else.

    `lock(name)` is a context manager holding a cross-host lock (a Prefect global concurrency
    limit); the key is checked again inside it, so a run that waited while another worker built
    the stage restores it instead of building it a second time. The record is written only after
    `dvc push` succeeded, so a worker that dies mid-build or mid-push leaves nothing taken as done.
    """
    state = remote.SharedState(rp)

    def restore(key: str) -> StageResult | None:
        entry = state.shared_entry(stage, key)
        if entry is None:
            return None
        remote.put_lock_entry(workspace, stage, entry["entry"])
        res = run_stage(workspace, stage, env=env, pull=True)
        # ran: the record's outputs could not be pulled (DVC then ran the stage): fall through
        return res if res.returncode == 0 and not res.ran else None

    key = remote.stage_key(workspace, stage)
    if key is None:  # an input is missing: DVC brings it (upstream) and decides
        return run_stage(workspace, stage, env=env, pull=True)
    if (res := restore(key)) is not None:
        return res
    with lock(f"camtune-shared-{stage}-{key[:24]}"):
        if (res := restore(key)) is not None:
            return res
        res = run_stage(workspace, stage, env=env, pull=True)
        if res.returncode == 0:
            remote.push(workspace, list(dict.fromkeys([*res.ran_stages, stage])), rp)
            entry = remote.lock_entry(workspace, stage)
            if entry is not None and remote.stage_key(workspace, stage) == key:
                state.commit_shared(stage, key, entry, by or {})
        return res


def stage_error(result: StageResult) -> str:
    """The step's own message (what camtune.runners.cli printed as `error: ...`), not DVC's wrapper text."""
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
