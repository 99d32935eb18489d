"""sample_data: draw the bundled synthetic camera scenes into one global pool shared by every demo
user and a dataset per demo user (`sample_data.global_pool`, `sample_data.users_dir/<user_id>`,
which `data.*` read by default).
`camtune sample_data`."""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from camtune.core import config
from camtune.steps.sample_data import generate, summary_markdown


@task(name="draw-and-write", cache_policy=NO_CACHE)
def draw_and_write(params: config.Params) -> dict:
    return generate(params, params.sample_data.global_pool, params.sample_data.users_dir)


@flow(name="sample_data")
def sample_data_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Generate the synthetic global pool and the demo users' datasets from params.sample_data."""
    params = config.load(params_path, overrides)
    summary = draw_and_write(params)
    create_markdown_artifact(key="sample-data", markdown=summary_markdown(summary),
                             description="synthetic sample data: counts per label, user, camera, condition")
    g, u = summary["datasets"]["global_pool"], summary["datasets"]["user"]
    get_run_logger().info("sample_data: global pool %d images / %d boxes -> %s; demo users %d images / %d boxes -> %s",
                          g["images"], g["boxes"], params.sample_data.global_pool,
                          u["images"], u["boxes"], params.sample_data.users_dir)
    return summary

