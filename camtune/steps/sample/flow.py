"""sample: draw base_train, global_eval and replay from the global pool, plus a strata table.
`camtune sample`."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from camtune.contracts import artifacts
from camtune.core import config
from camtune.steps.sample import draw as sampling

OUT_DIR = artifacts.SAMPLE_DIR
# the table artifact lives in Prefect's database: post every label and condition row, users and
# cameras only while they are few (strata.csv always has them all)
MAX_TABLE_ROWS = 400


@task(name="draw-sets", cache_policy=NO_CACHE)
def draw(params: config.Params) -> sampling.SampleResult:
    return sampling.sample_from_params(params)


@task(name="write-manifests", cache_policy=NO_CACHE)
def write(result: sampling.SampleResult, out_dir: Path) -> Path:
    return sampling.write_outputs(out_dir, result)


def _table(strata) -> list[dict]:
    rows = strata[strata["dimension"].isin(["label", "condition"])]
    rest = strata[strata["dimension"].isin(["user", "camera"])]
    if len(rows) + len(rest) <= MAX_TABLE_ROWS:
        rows = strata
    return rows.to_dict("records")


@flow(name="sample")
def sample_flow(params_path: str = "params.yaml", overrides: dict | None = None,
                       out_dir: str | Path = OUT_DIR) -> dict:
    """Draw the base-model sample, the global evaluation set and the replay set from the global pool."""
    log = get_run_logger()
    params = config.load(params_path, overrides)
    result = draw(params)
    for w in result.samples.warnings:
        log.warning(w)
    out = write(result, Path(out_dir))
    counts = {name: m["count"] for name, m in result.manifests.items()}
    base = result.manifests["base_train"]
    create_table_artifact(
        key="sample-strata", table=_table(result.samples.strata),
        description=f"Images per label, condition (and user/camera) in each set; all rows: {out}/strata.csv")
    lines = [
        f"# Sample for user `{params.user.id}`", "",
        f"Pool `{params.data.global_pool}` (annotations sha256 `{base['pool_annotations_sha256'][:12]}`), "
        f"split by **{params.sample.split_unit}**.", "",
        "| set | images | note |", "| --- | ---: | --- |",
        f"| base_train | {counts['base_train']} | weighted {base['weighted_count']} "
        f"({len(base['repeats'])} upsampled), at most {result.samples.info['user_cap']} per user |",
        f"| global_eval | {counts['global_eval']} | salted hash of the {params.sample.split_unit}, "
        f"without `{params.user.id}` |",
        f"| replay | {counts['replay']} | {params.sample.replay_ratio} x the user's verified images |",
    ]
    if result.samples.warnings:
        lines += ["", "## Warnings", *[f"- {w}" for w in result.samples.warnings]]
    create_markdown_artifact(key="sample-summary", markdown="\n".join(lines),
                             description="base_train / global_eval / replay")
    log.info("sample: %s -> %s", counts, out)
    return {"out_dir": str(out), "counts": counts, "warnings": list(result.samples.warnings)}

