"""The task runner of the steps that fan out (validation file checks, evaluation shards):
threads in-process by default, a local Dask cluster with `pipeline.task_runner: dask`
(prefect-dask; point it at an existing cluster with `address` when you outgrow one host)."""
from __future__ import annotations

from camtune.core.config import PipelineParams

FAN_OUT_FLOWS = {"validate", "evaluate"}


def task_runner(p: PipelineParams):
    if p.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(cluster_kwargs={"n_workers": p.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=p.dask_workers)


def with_task_runner(flow_fn, params_path: str, overrides: dict | None):
    """`flow_fn` with the task runner params.yaml asks for, when it is a flow that fans out."""
    if getattr(flow_fn, "name", None) not in FAN_OUT_FLOWS:
        return flow_fn
    from camtune.core import config

    return flow_fn.with_options(task_runner=task_runner(config.load(params_path, overrides).pipeline))
