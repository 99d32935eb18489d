"""Training speed, printed:

1. the default base + fine-tune on the sample data through our flows (train_base_flow,
   finetune_flow), wall time each and the loss curve (what the model learned);
2. fine-tune images/s through our training path (`camtune.training.train.run`: progress action,
   fingerprint, labels) against Model Garden's `train_lib.run_experiment` called directly on the
   same experiment config and the same records, side by side in this one run (goal: ratio >= 0.95).

    python benchmarks/finetune_throughput.py [--compare-steps 40] [--workdir DIR] [--set k=v ...]

Runs in a scratch folder (the sample data is generated there with the sample_data and sample
flows), never touching ./artifacts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)


def _curve(progress: list[dict], every: int) -> str:
    pts = [r for r in progress if r["step"] % every == 0 or r is progress[-1]]
    return "  ".join(f"{r['step']}:{r['loss']:.3f}" for r in pts)


def main(argv=None) -> int:
    from camtune.core.config import parse_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare-steps", type=int, default=40)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--skip-default", action="store_true", help="only the side-by-side comparison "
                    "(needs a workdir with a finished default run)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.overrides)
    params_path = str(ROOT / "params.yaml")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="camtune-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    os.environ.setdefault("PREFECT_HOME", str(work / ".prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from prefect.testing.utilities import prefect_test_harness

    from camtune.core import config

    with prefect_test_harness(server_startup_timeout=180):
        from camtune.steps.finetune.flow import finetune_flow
        from camtune.steps.sample.flow import sample_flow
        from camtune.steps.sample_data.flow import sample_data_flow
        from camtune.steps.train_base.flow import train_base_flow

        params = config.load(params_path, overrides)
        print(f"workdir {work}")
        if not args.skip_default:
            t = time.monotonic()
            if not Path(params.data.global_pool, "annotations.json").exists():
                sample_data_flow(params_path=params_path, overrides=overrides)
            sample_flow(params_path=params_path, overrides=overrides)
            print(f"sample data + manifests: {time.monotonic() - t:.1f} s")

            t = time.monotonic()
            base = train_base_flow(params_path=params_path, overrides=overrides)
            t_base = time.monotonic() - t
            t = time.monotonic()
            ft = finetune_flow(params_path=params_path, overrides=overrides)
            t_ft = time.monotonic() - t
            bl = json.loads(Path("artifacts/train_base/train_log.json").read_text())
            fl = json.loads(Path("artifacts/finetune/train_log.json").read_text())
            tb, tf_ = params.train_base, params.finetune
            print("\n== default training on the sample data (input "
                  f"{params.training.input_size}, {params.training.backbone}) ==")
            print(f"train_base: {tb.steps} steps x batch {tb.batch_size} on {base['images']} images "
                  f"({base['examples']} with repeats): flow wall {t_base:.1f} s, "
                  f"training {bl['wall_s']:.1f} s, {bl['images_per_s']:.2f} img/s")
            print(f"  loss: {_curve(bl['progress'], max(1, tb.steps // 10))}")
            print(f"finetune:   {tf_.steps} steps x batch {tf_.batch_size} on {ft['user_images']} user + "
                  f"{ft['replay_images']} replay images ({ft['holdout']} held out): flow wall "
                  f"{t_ft:.1f} s, training {fl['wall_s']:.1f} s, {fl['images_per_s']:.2f} img/s")
            print(f"  loss: {_curve(fl['progress'], max(1, tf_.steps // 10))}")
            print(f"base + fine-tune wall time: {t_base + t_ft:.1f} s")

    compare(args.compare_steps)
    return 0


def compare(steps: int) -> None:
    """Same experiment (the fine-tune's saved params.yaml, its records, its init checkpoint),
    `steps` steps each from the base weights: Model Garden's train_lib directly vs our path."""
    from official.core import task_factory, train_lib

    from camtune.training import train
    from camtune.model.checkpoint import read_experiment, read_labels

    src = Path("artifacts/finetune/model")
    labels = read_labels(src)
    results = {}
    for name in ("model_garden", "camtune", "model_garden_2", "camtune_2"):
        exp = read_experiment(src)
        exp.trainer.train_steps = steps
        exp.trainer.checkpoint_interval = steps  # one checkpoint at the end for both
        d = Path(f"bench_{name}")
        shutil.rmtree(d, ignore_errors=True)
        t = time.monotonic()
        if name.startswith("model_garden"):
            strategy = train.make_strategy(exp)
            with strategy.scope():
                task = task_factory.get_task(exp.task, logging_dir=str(d))
            train_lib.run_experiment(distribution_strategy=strategy, task=task, mode="train",
                                     params=exp, model_dir=str(d))
        else:
            train.run(exp, d, label_names=labels, stage="finetune", progress=None)
        wall = time.monotonic() - t
        bs = exp.task.train_data.global_batch_size
        ips = steps * bs / wall
        steady = _steady_ips(d / "train", bs)
        results.setdefault(name.split("_2")[0], []).append((ips, steady))
        print(f"{name:>15}: {steps} steps in {wall:.1f} s = {ips:.2f} img/s end to end "
              f"(build + trace included); {steady:.2f} img/s after the first loop "
              f"(from the run's TensorBoard event times)")
    for i, what in ((0, "end to end"), (1, "steady state")):
        mg = max(r[i] for r in results["model_garden"])
        ours = max(r[i] for r in results["camtune"])
        print(f"== fine-tune throughput, {what}, best of 2 each: camtune {ours:.2f} img/s vs Model "
              f"Garden train_lib {mg:.2f} img/s: ratio {ours / mg:.3f} (goal >= 0.95) ==")


def _steady_ips(events_dir: Path, batch: int) -> float:
    """Images/s between the first and the last summary orbit wrote (its own wall times), so the
    one-off model build and graph tracing are left out - the same measure for both runs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events_dir), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    tag = "total_loss"
    ev = acc.Tensors(tag) if tag in acc.Tags().get("tensors", []) else acc.Scalars(tag)
    if len(ev) < 2:
        return float("nan")
    return (ev[-1].step - ev[0].step) * batch / (ev[-1].wall_time - ev[0].wall_time)


if __name__ == "__main__":
    raise SystemExit(main())
