"""A base started from a pretrained checkpoint vs a base from scratch, same steps, on the sample data.

    python benchmarks/init_checkpoint.py [--work DIR] [--pretrain-steps 150] [--base-steps 120]
                                         [--finetune-steps 50] [--freeze-steps 20]

No COCO checkpoint of our architecture exists to download, so the "pretrained checkpoint" is a
stand-in built here the way a public one would be: a model trained on a *different* synthetic pool
(other seed, other users and cameras) with a *smaller* label set (person, car, dog, cat - what
COCO maps to). Then, on the sample data, two arms with identical base and fine-tune steps:

  scratch : train_base from random weights -> finetune
  ckpt    : train_base from the stand-in (init_modules backbone_decoder, the head for our 11
            labels re-initialised, backbone frozen for --freeze-steps) -> finetune

and prints mAP@.5 / mAP of each base and fine-tune on the global evaluation set and on the user
holdout, side by side, with the measured training speed (steps/s) for the CPU estimate in docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)

from camtune.core import atomic, config  # noqa: E402
from camtune.steps.sample import draw as sampling
from camtune.steps.sample_data import generate
from camtune.core.dataset import load_dataset  # noqa: E402
from camtune.steps.finetune import finetune  # noqa: E402
from camtune.steps.train_base import train_base  # noqa: E402

STANDIN_LABELS = ["person", "car", "dog", "cat"]


def evaluate(model_dir: Path, ds, label_names) -> dict:
    from camtune.metrics.score import score_model

    res = score_model("checkpoint", model_dir, ds, label_names, slices=False, curves=False)
    return {"map50": res["map50"], "map": res["map"], "images": res["images"]}


def steps_per_s(stage_dir: Path) -> float:
    log = json.loads((stage_dir / "train_log.json").read_text())
    recs = log["progress"]
    if len(recs) < 2:
        return float("nan")
    return (recs[-1]["step"] - recs[0]["step"]) / (recs[-1]["elapsed_s"] - recs[0]["elapsed_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="bench-init-checkpoint")
    ap.add_argument("--pretrain-steps", type=int, default=150)
    ap.add_argument("--base-steps", type=int, default=120)
    ap.add_argument("--finetune-steps", type=int, default=50)
    ap.add_argument("--freeze-steps", type=int, default=20)
    ap.add_argument("--input-size", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)   # stages read/write artifacts/... relative to the working directory
    quiet = None
    size = {"training.input_size": args.input_size, "train_base.batch_size": args.batch_size,
            "finetune.batch_size": args.batch_size}
    over = {**size, "train_base.steps": args.base_steps, "finetune.steps": args.finetune_steps,
            "train_base.checkpoint_every": args.base_steps, "finetune.checkpoint_every": args.finetune_steps}
    p = config.load(ROOT / "params.yaml", over)
    t0 = time.time()
    if not Path(p.sample_data.global_pool, "annotations.json").exists():
        generate(p)
    standin_over = {"sample_data.seed": 99, "sample_data.global_pool": "data/standin/global",
                    "sample_data.users_dir": "data/standin/users", "sample_data.users": ["u_standin"],
                    "user.id": "u_standin"}
    ps = config.load(ROOT / "params.yaml", standin_over)
    if not Path("data/standin/global/annotations.json").exists():
        generate(ps)
    if not Path("artifacts/sample/replay.json").exists():
        sampling.write_outputs("artifacts/sample", sampling.sample_from_params(p))
    print(f"data ready in {time.time() - t0:.0f} s", flush=True)

    # the stand-in "public" checkpoint: another pool, 4 labels
    pre_params = config.load(ROOT / "params.yaml", {
        **standin_over, **size, "labels.names": STANDIN_LABELS, "labels.attribute_parents": {},
        "train_base.steps": args.pretrain_steps, "train_base.checkpoint_every": args.pretrain_steps})
    pool = load_dataset("data/standin/global").verified()
    man = Path("standin/base_train.json")
    atomic.write_json(man, {"source": "data/standin/global",
                            "image_ids": sorted(int(i) for i in pool.images["id"])})
    rows = {}
    t = time.time()
    train_base(pre_params, stage_dir=Path("standin/pretrain"), manifest=man, progress=quiet)
    rows["pretrain"] = {"wall_s": time.time() - t, "steps_per_s": steps_per_s(Path("standin/pretrain"))}
    print(f"stand-in checkpoint: {args.pretrain_steps} steps in {rows['pretrain']['wall_s']:.0f} s", flush=True)

    hold_sets = {}
    glob, _ = __import__("camtune.steps.evaluate.inputs", fromlist=["eval_set"]).eval_set(
        Path("artifacts/sample/global_eval.json"), p.labels.names)
    arms = {
        "scratch": p,
        "ckpt": config.load(ROOT / "params.yaml", {
            **over, "train_base.init_checkpoint": str(work / "standin/pretrain/model"),
            "train_base.init_modules": "backbone_decoder",
            "train_base.freeze_backbone_steps": args.freeze_steps}),
    }
    results = {}
    for arm, ap_ in arms.items():
        d = Path("arms") / arm
        t = time.time()
        train_base(ap_, stage_dir=d / "train_base", progress=quiet)
        tb = time.time() - t
        t = time.time()
        finetune(ap_, stage_dir=d / "finetune", base_model=d / "train_base" / "model", progress=quiet)
        tf_ = time.time() - t
        hold = json.loads((d / "finetune" / "holdout.json").read_text())["image_ids"]
        hold_ds = load_dataset(ap_.data.user_dataset).subset(hold).verified()
        hold_sets[arm] = hold
        r = {"base_wall_s": tb, "finetune_wall_s": tf_,
             "base_steps_per_s": steps_per_s(d / "train_base"), "finetune_steps_per_s": steps_per_s(d / "finetune")}
        for stage_name in ("train_base", "finetune"):
            r[f"{stage_name}/global"] = evaluate(d / stage_name / "model", glob, p.labels.names)
            r[f"{stage_name}/holdout"] = evaluate(d / stage_name / "model", hold_ds, p.labels.names)
        init = json.loads((d / "train_base" / "train_log.json").read_text()).get("init")
        if init:
            r["init"] = init["counts"]
        results[arm] = r
        print(f"{arm}: {json.dumps(r)}", flush=True)
    assert hold_sets["scratch"] == hold_sets["ckpt"]

    def f(v):
        return "  n/a" if v is None else f"{v:.3f}"
    print()
    print(f"base {args.base_steps} steps + fine-tune {args.finetune_steps} steps, batch "
          f"{p.train_base.batch_size}, input {p.training.input_size}; stand-in checkpoint "
          f"{args.pretrain_steps} steps on another pool with {len(STANDIN_LABELS)} labels")
    print(f"global eval: {glob.images.shape[0]} images; user holdout: {len(hold_sets['ckpt'])} images")
    print(f"{'':<22}{'scratch':>10}{'ckpt':>10}")
    for key in ("train_base/global", "train_base/holdout", "finetune/global", "finetune/holdout"):
        for m in ("map50", "map"):
            print(f"{key + ' ' + m:<26}{f(results['scratch'][key][m]):>6}{f(results['ckpt'][key][m]):>10}")
    for key in ("base_steps_per_s", "finetune_steps_per_s", "base_wall_s", "finetune_wall_s"):
        print(f"{key:<26}{results['scratch'][key]:>6.2f}{results['ckpt'][key]:>10.2f}")
    atomic.write_json(work / "results.json", {"args": vars(args), "pretrain": rows["pretrain"], "arms": results})


if __name__ == "__main__":
    main()
