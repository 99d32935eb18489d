"""Gate scenarios on the synthetic sample data: a healthy fine-tune is blessed, an overfit one
(tiny user set, many steps, high learning rate) is not, and its report names the refusing check.

    python scripts/gate_scenarios.py [--workdir DIR] [--base-steps 300] ...

Runs the real steps in a scratch workspace (synthetic data -> sample -> train_base -> finetune ->
`camtune.evaluation.evaluate`), twice for the fine-tune. It trains on CPU: the defaults are sized for a
few minutes on 2 cores (small images, few steps), not for a good model; the gate's thresholds are
params.yaml's own unless --set changes them. Prints both verdicts; exit 0 when they are as expected.
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", help="scratch workspace (default: a new temp folder, kept)")
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--global-images", type=int, default=160)
    p.add_argument("--user-images", type=int, default=48)
    p.add_argument("--base-steps", type=int, default=300)
    p.add_argument("--base-lr", type=float, default=0.08)
    p.add_argument("--finetune-steps", type=int, default=80)
    p.add_argument("--finetune-lr", type=float, default=0.01)
    p.add_argument("--overfit-user-images", type=int, default=3, help="user images the overfit run trains on")
    p.add_argument("--overfit-steps", type=int, default=300)
    p.add_argument("--overfit-lr", type=float, default=0.4)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra params override for every step, e.g. evaluate.gate.min_gain=0.01")
    return p.parse_args(argv)


def tiny_user_dataset(src: Path, dest: Path, keep_ids: list[int]) -> Path:
    """A copy of the user dataset's annotations with only `keep_ids` (images shared by symlink)."""
    coco = json.loads((src / "annotations.json").read_text())
    keep = set(keep_ids)
    coco["images"] = [im for im in coco["images"] if im["id"] in keep]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "annotations.json").write_text(json.dumps(coco))
    if not (dest / "images").exists():
        (dest / "images").symlink_to((src / "images").resolve())
    return dest


def main(argv=None) -> int:
    args = parse_args(argv)
    ws = Path(args.workdir or tempfile.mkdtemp(prefix="camtune-gate-scenarios-")).resolve()
    ws.mkdir(parents=True, exist_ok=True)
    os.chdir(ws)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from camtune import artifacts, config, evaluation, sampling, synth
    from camtune.artifacts import Manifest
    from camtune.config import parse_overrides
    from camtune.dataset import load_dataset
    from camtune.training import stages

    params_path = str(ROOT / "params.yaml")
    common = {
        "sample_data.global_images": args.global_images, "sample_data.user_images": args.user_images,
        "sample_data.user_images_in_pool": args.user_images // 4,
        "training.input_size": args.input_size, "training.log_every": 10,
        "training.base.steps": args.base_steps, "training.base.learning_rate": args.base_lr,
        "training.base.warmup_steps": min(20, args.base_steps - 1), "training.base.checkpoint_every": args.base_steps,
        "training.finetune.steps": args.finetune_steps, "training.finetune.learning_rate": args.finetune_lr,
        "training.finetune.warmup_steps": min(10, args.finetune_steps - 1),
        "training.finetune.checkpoint_every": args.finetune_steps,
        **parse_overrides(args.sets),
    }
    params = config.load(params_path, common)
    t0 = time.monotonic()

    def stamp(msg):
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)

    stamp(f"workspace {ws}")
    synth.generate(params)
    sampling.write_outputs(artifacts.SAMPLE_DIR, sampling.sample_from_params(params))
    stamp("sample data + manifests written")
    stages.train_base(params)
    stamp(f"base trained ({args.base_steps} steps at {args.input_size} px)")

    verdicts = {}

    def evaluate(name: str, overrides: dict):
        out = evaluation.evaluate(config.load(params_path, overrides))
        shutil.copytree(artifacts.EVALUATE_DIR, f"scenarios/{name}", dirs_exist_ok=True)
        verdicts[name] = out.verdict
        m = out.metrics
        stamp(f"{name}: {out.verdict.summary()} | "
              f"user mAP@.5 base {m['base']['user']['map50']} tuned {m['tuned']['user']['map50']} | "
              f"global mAP base {m['base']['global']['map']} tuned {m['tuned']['global']['map']}")

    # 1. healthy: the user's verified images + replay, params' fine-tune schedule
    stages.finetune(params)
    stamp(f"healthy fine-tune done ({args.finetune_steps} steps, lr {args.finetune_lr})")
    evaluate("healthy", common)

    # 2. overfit: the same holdout (hash-based, so the same ids fall out), but only a few user
    # images to train on, replay cut to the same few (replay_ratio 1), many steps, a high rate
    hold = list(Manifest.read(artifacts.HOLDOUT).image_ids)
    seen = set(Manifest.read(artifacts.REPLAY).get("user_images_in_base_train", []))
    user = load_dataset(params.data.user_dataset).of_user(params.user.id).verified()
    train_ids = [int(i) for i in user.images["id"] if int(i) not in set(hold) | seen][:args.overfit_user_images]
    tiny = tiny_user_dataset(Path(params.data.user_dataset), ws / "data/tiny_user", sorted(hold + train_ids))
    replay = json.loads(artifacts.REPLAY.read_text())  # rewritten below as a smaller manifest
    replay["image_ids"] = replay["image_ids"][:len(train_ids)]
    replay["count"] = len(replay["image_ids"])
    replay.pop("repeats", None)
    Path("scenarios").mkdir(exist_ok=True)
    Path("scenarios/replay_tiny.json").write_text(json.dumps(replay))
    overfit = {**common, "data.user_dataset": str(tiny), "training.finetune.steps": args.overfit_steps,
               "training.finetune.learning_rate": args.overfit_lr, "training.finetune.warmup_steps": 0,
               "training.finetune.checkpoint_every": args.overfit_steps}
    stages.finetune(config.load(params_path, overfit), replay_manifest=Path("scenarios/replay_tiny.json"))
    stamp(f"overfit fine-tune done ({len(train_ids)} user images, {args.overfit_steps} steps, lr {args.overfit_lr})")
    evaluate("overfit", overfit)

    print()
    for name, g in verdicts.items():
        print(f"{name:8s} {g.summary()}")
        for c in g.checks:
            print(f"           {'ok  ' if c['passed'] else 'FAIL'} {c['name']:24s} observed {c['observed']} "
                  f"threshold {c['threshold']}")
    print(f"reports: {ws}/scenarios/{{healthy,overfit}}/report.md")
    expected = verdicts["healthy"].blessed and not verdicts["overfit"].blessed
    print("as expected" if expected else "NOT as expected")
    return 0 if expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
