"""The whole pipeline as one Prefect flow (`train_model`) and the nightly `scan_users` flow.

`train_model` runs each DVC stage as its own task in a per-user workspace, so DVC decides what
to skip and `dvc.lock` stays true; `scan_users` starts `train_model` for every user with enough
new verified images. Deployments: prefect.yaml.

    camtune train_model                 # train_model for params.yaml's user
    camtune train_model --user u_other
    camtune scan [--no-wait]            # start runs for every due user (needs deployments)
    camtune history u_other             # a user's recorded runs (pipeline.remote.url set)

Many hosts (docs/deployment.md): with `pipeline.remote.url`, workers share only the Prefect API and
the object store; the shared base is built once per DVC stage key under a Prefect global
concurrency limit, and each finished stage is pushed and recorded before the next starts.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed

from camtune.contracts import artifacts
from camtune.core import config
from camtune.runners import orchestration, remote
from camtune.contracts.verdict import Verdict
from camtune.core.dataset import load_dataset
from camtune.core.errors import StepFailed

# Retries where a retry can help (network, object store); none where it cannot (a dataset that
# fails validation fails again; training is resumable through DVC's persisted checkpoints).
RETRIES = {"publish": 3, "train_base": 1}


def _api_env() -> dict:
    """Step processes report to the same Prefect API as this flow (the test harness sets it as a
    setting, not an env var, so pass it on explicitly)."""
    from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

    env = {}
    if PREFECT_API_URL.value():
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    if PREFECT_API_KEY.value():
        env["PREFECT_API_KEY"] = PREFECT_API_KEY.value()
    return env


def _lock(p: config.PipelineParams, timeout: float | None = None):
    """A cross-host lock: a Prefect global concurrency limit of 1 named for what it guards. Its
    lease outlives a killed holder by at most `pipeline.lease_s`."""
    from prefect.concurrency.sync import concurrency

    def enter(name: str):
        _ensure_limit(name, 1)
        return concurrency(name, occupy=1, timeout_seconds=p.shared_lock_timeout_s if timeout is None else timeout,
                           strict=True, lease_duration=p.lease_s)
    return enter


@task(name="dvc-repro", task_run_name="{stage}")
def repro_stage(workspace: str, stage: str, remote_params: dict | None = None,
                pipeline_params: dict | None = None, user_id: str | None = None) -> dict:
    logger = get_run_logger()
    ws = Path(workspace)
    rp = config.RemoteParams(**remote_params) if remote_params else None
    if rp is None:
        result = orchestration.run_stage(ws, stage, env=_api_env())
    elif stage in orchestration.SHARED_STAGES:
        pp = config.PipelineParams(**pipeline_params)
        result = orchestration.run_shared_stage(ws, stage, rp, _lock(pp), env=_api_env(),
                                                by={"user_id": user_id, "host": os.uname().nodename,
                                                    "worker": os.environ.get("PREFECT__WORKER_NAME"),
                                                    "flow_run": _flow_run_id()})
    else:
        result = orchestration.run_stage(ws, stage, env=_api_env(), pull=True)
        if result.returncode == 0 and result.ran_stages:
            remote.push(ws, list(dict.fromkeys([*result.ran_stages, stage])), rp)
    if rp is not None and result.returncode == 0 and user_id:
        # after the push: the record never names an output the store does not hold
        remote.SharedState(rp).save_current(user_id, ws)
    summary = {"stage": stage, "ran": result.ran, "returncode": result.returncode,
               "seconds": round(result.seconds, 2), "compute": round(result.compute, 2)}
    if result.returncode != 0:
        summary["error"] = orchestration.stage_error(result)
        logger.error("%s failed:\n%s", stage, summary["error"])
        if stage in RETRIES:
            # raising lets Prefect retry this task; the flow sees the last failure
            raise StepFailed(f"stage {stage} failed:\n{summary['error']}")
    else:
        logger.info("%s %s in %.1fs", stage, "ran" if result.ran else "skipped (unchanged)", result.seconds)
    return summary


def _user_overrides(params: config.Params, user_id: str, overrides: dict | None, repo: Path) -> dict:
    out = dict(overrides or {})
    out["user.id"] = user_id
    # one registry for every workspace: a relative local root means the main checkout's folder
    root = Path(params.publish.registry.root)
    if params.publish.registry.kind == "local" and not root.is_absolute():
        out["publish.registry.root"] = str(repo / root)
    template = params.pipeline.user_dataset_template
    if template and "data.user_dataset" not in out:
        out["data.user_dataset"] = template.format(user_id=user_id)
    return out


def _ensure_limit(name: str, limit: int) -> None:
    """Create/update a global concurrency limit; a racing creator is as good as us."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, limit)
        except ObjectAlreadyExists:
            pass


def _user_lock(stack: ExitStack, user_id: str, p: config.PipelineParams) -> bool:
    """One run per user at a time, across workers: a Prefect global concurrency limit of 1 per
    user. Returns False when busy and `on_busy: skip` (or the wait timed out)."""
    timeout = 5.0 if p.on_busy == "skip" else p.lock_timeout_s
    try:
        stack.enter_context(_lock(p, timeout)(f"camtune-user-{user_id}"))
    except TimeoutError:
        return False
    return True


def _flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4().hex)


@flow(name="train_model", log_prints=True)
def train_model(user_id: str | None = None, params_path: str = "params.yaml",
                overrides: dict | None = None, stages: list[str] | None = None):
    """Validate, sample, train, fine-tune, evaluate, export and publish one user's model."""
    config.check_run_overrides(overrides, params_path)  # any Prefect API client sets these
    logger = get_run_logger()
    repo = orchestration.repo_root()
    params = config.load(repo / params_path, overrides)
    user_id = user_id or params.user.id
    run_overrides = _user_overrides(params, user_id, overrides, repo)
    params = config.load(repo / params_path, run_overrides)  # fail on a bad override before any work
    stages = list(stages or orchestration.STAGES)
    rp = params.pipeline.remote if params.pipeline.remote.url else None
    if rp is not None:
        if params.publish.registry.kind == "local":
            raise StepFailed("pipeline.remote.url is set (workers on many hosts) but publish.registry.kind is "
                             "local: each host would publish into its own folder; use publish.registry.kind: s3")
        remote.check(rp)  # one clear line naming endpoint and bucket before any stage runs
        if orchestration.uses_sample_data(params) and "sample_data" not in stages:
            stages.insert(0, "sample_data")  # the shared world: built once, pulled everywhere else
    remote_args = ({"remote_params": rp.model_dump(), "pipeline_params": params.pipeline.model_dump(),
                    "user_id": user_id} if rp is not None else {})

    with ExitStack() as stack:
        if not _user_lock(stack, user_id, params.pipeline):
            msg = f"another train_model run for user {user_id} is active; skipped"
            logger.warning(msg)
            return Completed(message=msg, name="Skipped")
        t0 = time.perf_counter()
        ws = orchestration.prepare_workspace(repo, params.pipeline.workspaces, user_id, rp)
        orchestration.set_params(ws, run_overrides)
        results = []
        for stage in stages:
            try:
                res = repro_stage.with_options(retries=RETRIES.get(stage, 0), retry_delay_seconds=5)(
                    str(ws), stage, **remote_args)
            except StepFailed as exc:
                return Failed(message=f"{user_id}: {exc}")
            results.append(res)
            if res["returncode"] != 0:
                reason = "validation failed" if stage == "validate" else f"stage {stage} failed"
                return Failed(message=f"{user_id}: {reason}:\n{res['error']}")
            if stage == "evaluate":
                gate = Verdict.read(ws / artifacts.GATE)
                if not gate.may_publish(params.publish.allow_inconclusive):
                    why = gate.summary or gate.reasons() or f"see {artifacts.EVALUATION_REPORT}"
                    if rp is not None:
                        _record(rp, user_id, ws, results, gate, None, t0)
                    _summary(user_id, results, gate, None, time.perf_counter() - t0)
                    return Completed(message=f"{user_id}: model {gate.verdict.replace('_', ' ')}, not published ({why})",
                                     name="NotBlessed")
        receipt_path = ws / artifacts.RECEIPT
        receipt = json.loads(receipt_path.read_text()) if receipt_path.exists() else None
        gate_path = ws / artifacts.GATE
        gate = Verdict.read(gate_path) if gate_path.exists() else None
        if rp is not None:  # the record every host and the operator can read
            _record(rp, user_id, ws, results, gate, receipt, t0)
        elif params.pipeline.record_runs:
            model = (receipt or {}).get("model_id", "no model")
            orchestration.record_run(ws, user_id, f"train_model {user_id}: {model}")
        _summary(user_id, results, gate, receipt, time.perf_counter() - t0)
        return {"user_id": user_id, "workspace": str(ws), "stages": results, "receipt": receipt}


def _record(rp: config.RemoteParams, user_id: str, ws: Path, results, gate, receipt, t0: float) -> None:
    run_id = _flow_run_id()  # once: outside a flow run it is a fresh uuid each call
    record = remote.SharedState(rp).record_run(user_id, run_id, ws, {
        "user_id": user_id, "flow_run": run_id, "host": os.uname().nodename,
        "worker": os.environ.get("PREFECT__WORKER_NAME"), "checkout": str(ws.parent.parent),
        "model_id": (receipt or {}).get("model_id"), "verdict": gate.verdict if gate else None,
        "stages": results, "wall_s": round(time.perf_counter() - t0, 2)})
    get_run_logger().info("run recorded at %s", record)


def _summary(user_id, results, gate: Verdict | None, receipt, seconds) -> None:
    rows = "\n".join(
        f"| {r['stage']} | {'ran' if r['ran'] else 'skipped'} | {r['seconds']} |" for r in results)
    verdict = "n/a" if gate is None else gate.headline()
    published = (receipt or {}).get("model_id", "nothing published")
    create_markdown_artifact(
        key=f"train-model-{user_id.lower().replace('_', '-').replace('.', '-')}",
        markdown=(f"# train_model {user_id}\n\nGate: **{verdict}**. Published: **{published}**. "
                  f"Wall time {seconds:.1f}s.\n\n| stage | | seconds |\n|---|---|---|\n{rows}\n"),
        description=f"pipeline run for {user_id}",
    )


# ---------------------------------------------------------------- scan


@task(name="start-train-model", task_run_name="train_model-{user_id}")
def start_run(user_id: str, deployment: str, wait: bool) -> str:
    from prefect.concurrency.sync import concurrency
    from prefect.deployments import run_deployment

    if not wait:
        run = run_deployment(deployment, parameters={"user_id": user_id}, timeout=0)
        return str(run.id)
    # bounded: at most `slots` runs started by scans are active at once
    with concurrency("camtune-train-slots", occupy=1, strict=True):
        run = run_deployment(deployment, parameters={"user_id": user_id})
    return str(run.id)


def _ensure_sample_world(params: config.Params, rp: config.RemoteParams | None) -> None:
    """The bundled world on a host that has none yet: pulled from the store when another worker
    built it (the same shared-stage record as in train_model), built here otherwise."""
    repo = orchestration.repo_root()
    if rp is None:
        res = orchestration.run_stage(repo, "sample_data", env=_api_env())
    else:
        remote.check(rp)
        remote.configure_dvc(repo, rp)
        res = orchestration.run_shared_stage(repo, "sample_data", rp, _lock(params.pipeline), env=_api_env(),
                                             by={"scan": True, "host": os.uname().nodename})
    if res.returncode != 0:
        raise StepFailed(f"sample_data failed:\n{orchestration.stage_error(res)}")


@flow(name="scan_users", log_prints=True)
def scan_users(params_path: str = "params.yaml", overrides: dict | None = None,
               deployment: str = "train_model/train-model", wait: bool = True) -> list[str]:
    """Start train_model for every user with at least `validate.min_new_verified` new verified
    images in the global pool (not in the lineage of their newest published model)."""
    from camtune.contracts.registry import open_registry

    logger = get_run_logger()
    params = config.load(params_path, overrides)
    rp = params.pipeline.remote if params.pipeline.remote.url else None
    sample = orchestration.uses_sample_data(params)
    if sample and not (Path(params.data.global_pool) / "annotations.json").is_file():
        _ensure_sample_world(params, rp)
    pool = load_dataset(params.data.global_pool)
    registry = open_registry(params.publish.registry)
    # the bundled world's customers are its demo users; its other households only fill the pool
    customers = set(params.sample_data.users) if sample else None
    trained = {}
    for uid in sorted(pool.images["user_id"].dropna().unique()):
        if not config.SAFE_SEGMENT.match(str(uid)):
            logger.warning("user id %r is not a safe path segment; skipped", uid)
            continue
        if customers is not None and uid not in customers:
            continue
        lineage = registry.latest_lineage(uid)
        trained[uid] = set(map(int, (lineage or {}).get("image_ids", [])))
    images = pool.images[pool.images["user_id"].isin(trained)] if customers is not None else pool.images
    counts = orchestration.new_verified_counts(images, trained)
    due = orchestration.due_users(counts, params.validate.min_new_verified)
    logger.info("new verified images per user: %s; due: %s", counts.to_dict(), due)
    _ensure_limit("camtune-train-slots", params.pipeline.max_concurrent_runs)
    futures = [start_run.submit(u, deployment, wait) for u in due]
    for f in futures:
        f.result()
    return due


def scan_cli(params_path: str, overrides: dict, wait: bool, **_) -> None:
    due = scan_users(params_path=params_path, overrides=overrides, wait=wait)
    print(f"started train_model for: {', '.join(due) or 'nobody (no user has enough new images)'}")


def train_cli(params_path: str, overrides: dict, user_id: str | None, **_) -> None:
    state = train_model(user_id=user_id, params_path=params_path, overrides=overrides, return_state=True)
    if state.is_failed():
        raise StepFailed(state.message or "train_model failed")
    print(state.message or f"train_model {state.name}")


def history_cli(params_path: str, overrides: dict, history: str, **_) -> None:
    params = config.load(params_path, overrides)
    if not params.pipeline.remote.url:
        raise StepFailed("--history reads the run records in the object store: pipeline.remote.url is not set "
                         "(on one machine the records are the git branch camtune-runs/<user>)")
    runs = remote.SharedState(params.pipeline.remote).history(history)
    for r in runs:
        ran = [s["stage"] for s in r.get("stages", []) if s.get("ran")]
        print(f"{r['record']}  host={r.get('host')}  verdict={r.get('verdict')}  model={r.get('model_id')}  "
              f"ran={','.join(ran) or '-'}  wall={r.get('wall_s')}s")
    if not runs:
        print(f"no recorded runs for {history}")
