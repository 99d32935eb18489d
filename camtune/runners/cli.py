"""`camtune`: the one command. A subcommand per pipeline step (what dvc.yaml calls) and per job a
user has. `camtune --help` lists them; `camtune <command> --help` says what it reads and writes.

Nothing heavy is imported until a command runs: `camtune --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path


# step -> (one line, reads, writes). The step's flow is camtune.steps.<step>.flow:<step>_flow.
STEPS: dict[str, tuple[str, str, str]] = {
    "sample_data": ("generate the bundled synthetic sample data",
                    "params sample_data, labels", "sample_data.global_pool, sample_data.users_dir"),
    "validate": ("check the user's dataset before any training",
                 "data.user_dataset, the registry (the user's newest model, the incumbent)",
                 "artifacts/validate/ (report.json, report.md, gx_results.json); exit 1 on error findings"),
    "sample": ("draw base_train, global_eval and replay from the global pool",
               "data.global_pool and data.user_dataset annotations", "artifacts/sample/ (manifests, strata.csv)"),
    "train_base": ("train the base model on base_train (or pull it from the registry)",
                   "artifacts/sample/base_train.json, the global pool",
                   "artifacts/train_base/ (model/, records/, train_log.json)"),
    "finetune": ("fine-tune the base on the user's verified images plus replay",
                 "data.user_dataset, artifacts/validate, artifacts/sample/replay.json, artifacts/train_base/model",
                 "artifacts/finetune/ (model/, holdout.json, trained_on.json, train_log.json)"),
    "evaluate": ("score base, tuned and the incumbent; the gate; Frigate filters",
                 "both models, global_eval.json, holdout.json, the incumbent (evaluate.incumbent)",
                 "artifacts/evaluate/ (gate.json, metrics.json, filters.yml, report.md, details.json, plots)"),
    "export": ("int8 TFLite (+ Edge TPU, ONNX) in Frigate's contract, with a fidelity check",
               "artifacts/finetune/model, holdout.json, global_eval.json, replay.json",
               "artifacts/export/ (model.tflite, labelmap.txt, export.json, ...)"),
    "publish": ("publish a blessed model into the registry (or --install-to a Frigate model_cache)",
                "artifacts/export, artifacts/evaluate/gate.json, the base model",
                "the registry entry; artifacts/publish/receipt.json"),
    "report": ("the run as one HTML page", "whatever exists of the other steps' outputs",
               "artifacts/report/ (index.html, img/, charts/)"),
}

# `camtune ingest <source>` -> (flow function in camtune.steps.ingest.flow, its options, fixed kwargs)
INGEST: dict[str, tuple[str, str | None, dict, str]] = {
    "frigate": ("ingest_frigate", "frigate_arguments", {},
                "Frigate's HTTP API -> unverified images + Frigate's boxes in data.user_dataset"),
    "suggest": ("ingest_suggest", "suggest_arguments", {},
                "pre-annotate the unverified images with our model; rank them for review"),
    "export-ls": ("ingest_export", "export_arguments", {"tool": "label_studio"},
                  "Label Studio tasks for the images to review (ingest.tools.export_dir)"),
    "export-cvat": ("ingest_export", "export_arguments", {"tool": "cvat"},
                    "a CVAT task (images + COCO 1.0 annotations) for the images to review"),
    "import-ls": ("ingest_import", "import_ls_arguments", {"tool": "label_studio"},
                  "a Label Studio export -> verified images in data.user_dataset"),
    "import-cvat": ("ingest_import", "import_cvat_arguments", {"tool": "cvat"},
                    "a CVAT COCO 1.0 export -> verified images in data.user_dataset"),
}

EPILOG = """steps (each reads and writes only its dvc.yaml deps/outs; `camtune <step> --help`):
  """ + "\n  ".join(f"{s:<12} {line}" for s, (line, _, _) in STEPS.items()) + """

jobs:
  run          the pipeline: `dvc repro` of dvc.yaml (skips what did not change)
  ingest       data in: frigate | suggest | export-ls | export-cvat | import-ls | import-cvat
  ingest_public  a public COCO dataset -> a global pool (its own DVC stage, ingest_public/dvc.yaml)
  train_model  the whole pipeline for one user as a Prefect flow (per-user workspace)
  scan         start train_model for every user with enough new verified images
  history      a user's recorded runs in the object store (pipeline.remote.url)
  server       the local Prefect server the steps share: status | stop
  config       check params.yaml; --write-schema regenerates schemas/params.schema.json
"""


def _step_parser(step: str) -> argparse.ArgumentParser:
    from camtune.runners.step_runner import base_parser

    line, reads, writes = STEPS[step]
    return base_parser(f"{line}.\n\nreads:  {reads}\nwrites: {writes}", prog=f"camtune {step}")


def _flow(step: str):
    return getattr(importlib.import_module(f"camtune.steps.{step}.flow"), f"{step}_flow")


def run_step(step: str, argv: list[str]) -> int:
    from camtune.runners.step_runner import run

    parser = _step_parser(step)
    if step == "publish":
        return _publish(parser, argv)
    return run(_flow(step), argv, parser, stage=step)


def _publish(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    from camtune.runners.step_runner import run
    from camtune.steps.publish import flow as publish

    publish.arguments(parser)
    args = vars(parser.parse_args(argv))
    if "install_to" in args:
        return run(publish.install_flow, argv, parser)
    if "model_id" in args or "detector" in args:
        parser.error("--model-id and --detector go with --install-to")
    return run(publish.publish_flow, argv, parser, stage="publish")


def ingest(argv: list[str]) -> int:
    from camtune.runners.step_runner import base_parser, run

    if not argv or argv[0] not in INGEST:
        lines = "\n".join(f"  {k:<12} {v[3]}" for k, v in INGEST.items())
        print(f"usage: camtune ingest {{{','.join(INGEST)}}} [options]\n\n{lines}\n\n"
              "`camtune ingest <source> --help` for its options", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    flow_name, args_name, fixed, line = INGEST[argv[0]]
    mod = importlib.import_module("camtune.steps.ingest.flow")
    parser = base_parser(line, prog=f"camtune ingest {argv[0]}")
    if args_name:
        getattr(mod, args_name)(parser)
    return run(getattr(mod, flow_name), argv[1:], parser=parser, **fixed)


def ingest_public(argv: list[str]) -> int:
    from camtune.runners.step_runner import base_parser, run
    from camtune.steps.ingest_public import flow

    parser = base_parser("a public COCO-format dataset -> a global pool of ours (params ingest_public).\n\n"
                         "reads:  ingest_public.annotations and images\n"
                         "writes: <ingest_public.out>/<ingest_public.name>", prog="camtune ingest_public")
    flow.arguments(parser)
    return run(flow.ingest_public_flow, argv, parser)


def pipeline(command: str, argv: list[str]) -> int:
    from camtune.runners import pipeline as P
    from camtune.runners.step_runner import base_parser, run

    if command == "train_model":
        p = base_parser("the whole pipeline for one user as a Prefect flow (train_model): each DVC stage "
                        "as a task in the user's workspace", prog="camtune train_model")
        p.add_argument("--user", dest="user_id", default=None, help="user id (default: user.id)")
        return run(P.train_cli, argv, p)
    if command == "scan":
        p = base_parser("start train_model (deployment) for every user with enough new verified images",
                        prog="camtune scan")
        p.add_argument("--no-wait", dest="wait", action="store_false", help="do not wait for the runs")
        return run(P.scan_cli, argv, p)
    p = base_parser("a user's recorded runs in the object store (pipeline.remote.url)", prog="camtune history")
    p.add_argument("history", metavar="USER")
    return run(P.history_cli, argv, p)


def run_pipeline(argv: list[str]) -> int:
    """`camtune run`: dvc repro, with this environment's `camtune` first on PATH (dvc.yaml calls it)."""
    p = argparse.ArgumentParser(prog="camtune run", description=(
        "the pipeline: `dvc repro [STAGE ...]` of dvc.yaml (the DAG is defined there once). DVC skips "
        "every stage whose deps and params did not change."))
    p.add_argument("stages", nargs="*", help="stop at these stages (default: all)")
    p.add_argument("-f", "--force", action="store_true", help="re-run even if nothing changed")
    args = p.parse_args(argv)
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if args.force else []), *args.stages]
    return subprocess.call(cmd, env=step_env())


def step_env(env: dict | None = None) -> dict:
    """An environment whose PATH finds this installation's `camtune` (the command dvc.yaml runs)."""
    env = dict(os.environ if env is None else env)
    here = str(Path(sys.executable).parent)
    if here not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, [here, env.get("PATH")]))
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: camtune <command> [--params params.yaml] [--set key=value ...]\n\n"
              "Turn a Frigate user's verified camera images into a Frigate-ready detector.\n\n" + EPILOG)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in STEPS:
        return run_step(command, rest)
    if command == "run":
        return run_pipeline(rest)
    if command == "ingest":
        return ingest(rest)
    if command == "ingest_public":
        return ingest_public(rest)
    if command in ("train_model", "scan", "history"):
        return pipeline(command, rest)
    if command == "server":
        from camtune.runners import prefect_server

        return prefect_server.main(rest)
    if command == "config":
        from camtune.core import config

        return config.main(rest)
    print(f"camtune: unknown command {command!r}; `camtune --help` lists them", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
