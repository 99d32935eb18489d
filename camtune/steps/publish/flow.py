"""Publish the blessed model into the registry (`camtune publish`), or install a published
model into a Frigate model_cache (`camtune publish --install-to DIR [--model-id ID]`)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from camtune.core import config
from camtune.steps.publish import release as publishing
from camtune.core.errors import StepFailed
from camtune.contracts.registry import ChecksumMismatch, open_registry


def _retry_upload(task, task_run, state) -> bool:
    """Retry transport trouble and checksum mismatches; a refusal (tenancy, bad id) stays final.
    (botocore already retried each request; this re-runs the whole idempotent upload.)"""
    try:
        state.result(raise_on_failure=True)
    except ChecksumMismatch:
        return True
    except StepFailed:
        return False
    except Exception:
        return True
    return False


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_upload, cache_policy=NO_CACHE)
def upload_entry(plan: publishing.Plan, registry_params: config.RegistryParams) -> dict:
    """Files first, index last; safe to re-run (content-derived model id, idempotent commit)."""
    registry = open_registry(registry_params, user_id=plan.user_id)
    return publishing.upload(plan, registry)


@flow(name="publish")
def publish_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Publish the blessed, exported model to the registry; write artifacts/publish/receipt.json."""
    params = config.load(params_path, overrides)
    with tempfile.TemporaryDirectory(prefix="camtune-publish-") as staging:
        plan = publishing.prepare(params, Path(staging))
        receipt = upload_entry(plan, params.publish.registry)
    path = publishing.write_receipt(receipt)
    verb = "published" if receipt["created"] else "already published (nothing changed)"
    flag = plan.metadata.get("published_unblessed")
    if flag:  # the user asked for it (publish.allow_inconclusive); say so where they will see it
        print(f"WARNING: {flag['warning']}", file=sys.stderr)
        verb += " UNBLESSED (gate inconclusive)"
    rows = "\n".join(f"| {n} | `{f['sha256'][:16]}…` | {f['size']} | {f['uri']} |"
                     for n, f in sorted(receipt["files"].items()))
    configs = "\n".join(f"### Frigate `{det}` detector: `{d['file']}`\n\n```yaml\n{d['config']}```\n"
                        for det, d in sorted(receipt["frigate"].items()))
    create_markdown_artifact(
        key="publish-receipt",
        markdown=(f"# Model {receipt['model_id']} for {receipt['user_id']}: {verb}\n\n"
                  f"Index: {receipt['index']}\n\n| file | sha256 | bytes | uri |\n|---|---|---|---|\n{rows}\n\n"
                  f"Install with `camtune publish --install-to DIR --detector <detector>`, then:\n\n"
                  f"{configs}"),
        description="registry receipt")
    if not receipt.get("promoted", True):  # recorded, but the user keeps the model they run (docs/incumbent.md)
        verb += f" but NOT promoted ({receipt['not_promoted_reason']})"
    print(f"{verb}: model {receipt['model_id']} -> {receipt['index']} (receipt: {path})")
    return receipt


@flow(name="install")
def install_flow(params_path: str = "params.yaml", overrides: dict | None = None, *,
                  install_to: str, model_id: str | None = None, detector: str = "cpu") -> dict:
    """Install a published model (newest by default) into a Frigate model_cache folder."""
    params = config.load(params_path, overrides)
    registry = open_registry(params.publish.registry, user_id=params.user.id)
    result = publishing.install(registry, params.user.id, install_to, model_id=model_id, detector=detector)
    print(f"installed {result['model']} (+ .json); Frigate config:\n{result['config']}")
    return result


def arguments(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: absent options stay out of the flow's kwargs, so one parser serves both flows
    p.add_argument("--install-to", default=argparse.SUPPRESS, metavar="DIR",
                   help="install into this Frigate model_cache folder instead of publishing")
    p.add_argument("--model-id", default=argparse.SUPPRESS, help="with --install-to: which model (default newest)")
    p.add_argument("--detector", default=argparse.SUPPRESS, choices=sorted(publishing.DETECTORS),
                   help="with --install-to: the Frigate detector type to install for (default cpu; onnx and "
                        "openvino load the ONNX variant)")
