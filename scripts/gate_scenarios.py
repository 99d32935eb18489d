"""Planted gate scenarios on the synthetic sample data: the gate must bless a healthy fine-tune,
refuse the planted failures, and never refuse a model compared with itself.

    python scripts/gate_scenarios.py --workdir DIR [--seeds 7 8 9] [--phase train|gate|all]

| scenario | what is planted | expected |
| --- | --- | --- |
| healthy | the user's images + replay, a short fine-tune | blessed |
| overfit | 3 user images (replay cut to 3), many steps, a high learning rate | not_blessed |
| label_shift | the user's data calls every cat a dog (no replay, a long fine-tune) | not_blessed on class_drop[cat] or class_loss[cat] |
| forgetting | no replay, a long fine-tune at a higher rate | not_blessed on global_drop |
| tiny | the healthy model judged on a 3-image user holdout | inconclusive |
| noise | the base model against itself, one bootstrap seed ("salt") per seed | never not_blessed |
| worse_than_incumbent | the user runs the healthy fine-tune (int8, from the registry); the new model is barely fine-tuned | incumbent: worse (not promoted) |
| better_than_incumbent | the user runs the barely fine-tuned model (int8, from the registry); the new model is the healthy one | incumbent: not_worse |

The incumbent scenarios (docs/incumbent.md) judge the comparison with the model the user runs now:
the incumbent is exported to int8 by the real export step (`camtune.steps.export.build.export`, its
fidelity limits lifted: the incumbent's quantization is not under test) and published into a
scenario-local registry with its lineage, so evaluate finds it as it would in production. Their
verdict column is the incumbent comparison's (`gate.json` "incumbent"), not the blessing.

The noise scenario asks whether the comparisons refuse a model for noise alone, so its absolute
floors are off (0): a base that finds under half of the user's objects is rightly refused by
`frigate_user_floor` whatever it is compared with, and that is no false refusal.

Each seed is its own synthetic world (`sample_data.seed`), its own sample and base model; the real
steps run in `DIR/seed<N>` (sample data -> sample -> train_base), every scenario's fine-tune in
`DIR/seed<N>/<scenario>` (symlinks to the seed's data, sample and base). `--phase train` only
trains (skipping what is there), `--phase gate` only evaluates (`camtune.steps.evaluate.evaluate`, the
real gate) and prints the table. Data size, input size and the recipe are params.yaml's unless an
option says otherwise; `--reuse RUN` takes the first seed's base and healthy fine-tune from a
default `dvc repro` folder instead of training them again.
Exit 0 when every verdict is as expected.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)

SCENARIOS = ("healthy", "overfit", "label_shift", "forgetting", "tiny", "noise", "worse_than_incumbent",
             "better_than_incumbent")
EXPECTED = {"healthy": "blessed", "overfit": "not_blessed", "label_shift": "not_blessed",
            "forgetting": "not_blessed", "tiny": "inconclusive", "noise": "not not_blessed",
            "worse_than_incumbent": "incumbent: worse", "better_than_incumbent": "incumbent: not_worse"}
# incumbent scenario -> (the new model's fine-tune, the incumbent's fine-tune)
INCUMBENT = {"worse_than_incumbent": ("barely", "healthy"), "better_than_incumbent": ("healthy", "barely")}
# the check (any of) that must be among the failed ones
EXPECTED_CHECK = {"label_shift": ("class_drop[cat]", "class_loss[cat]"), "forgetting": ("global_drop",)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True, help="scratch workspace (reused: trained models are kept)")
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="sample_data.seed per run")
    p.add_argument("--phase", choices=("train", "gate", "all", "table"), default="all",
                   help="table: print the table of every row gathered so far (DIR/scenarios.jsonl)")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    # None = params.yaml's value: the scenarios judge the default recipe on the default data size
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--eval-fraction", type=float, default=None, help="sample.eval_fraction")
    p.add_argument("--global-images", type=int, default=None)
    p.add_argument("--user-images", type=int, default=None)
    p.add_argument("--user-images-in-pool", type=int, default=None)
    # learning rates are Adam's (params.yaml's default optimizer)
    p.add_argument("--base-steps", type=int, default=None)
    p.add_argument("--base-lr", type=float, default=None)
    p.add_argument("--finetune-steps", type=int, default=None)
    p.add_argument("--finetune-lr", type=float, default=None)
    p.add_argument("--overfit-user-images", type=int, default=3)
    p.add_argument("--overfit-steps", type=int, default=300)
    p.add_argument("--overfit-lr", type=float, default=0.005)
    p.add_argument("--shift-steps", type=int, default=300)
    p.add_argument("--shift-lr", type=float, default=0.002)
    p.add_argument("--shift-replay", action=argparse.BooleanOptionalAction, default=False,
                   help="replay in the label-shift fine-tune. Off by default: with replay (200 steps at "
                        "0.001) the IR user's cats called dogs left the global set's cat AP as it was "
                        "(+0.007 [-0.009, +0.037]), so there was no failure to catch")
    p.add_argument("--forget-steps", type=int, default=300)
    p.add_argument("--forget-lr", type=float, default=0.002)
    p.add_argument("--tiny-holdout", type=int, default=3)
    p.add_argument("--barely-steps", type=int, default=10,
                   help="the barely fine-tuned model of the incumbent scenarios (the healthy one has the default)")
    p.add_argument("--salts", type=int, default=3,
                   help="bootstrap seeds per scenario and seed (re-judged on the same detections)")
    p.add_argument("--reuse", type=Path, default=None, metavar="RUN",
                   help="a default `dvc repro` folder for the first seed: its sample data, sample, base "
                        "and fine-tune (as the healthy scenario) are copied in instead of trained again; "
                        "the first seed must be its sample_data.seed and the other options its params")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra params override for every step, e.g. evaluate.gate.resamples=500")
    return p.parse_args(argv)


def copy_dataset(src: Path, dest: Path, keep_ids=None, relabel: dict[str, str] | None = None) -> Path:
    """A copy of a dataset's annotations (images hard-linked): only `keep_ids`, and with
    the boxes of label a called b for every a -> b in `relabel`."""
    coco = json.loads((src / "annotations.json").read_text())
    if keep_ids is not None:
        keep = set(keep_ids)
        coco["images"] = [im for im in coco["images"] if im["id"] in keep]
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    if relabel:
        ids = {c["name"]: c["id"] for c in coco["categories"]}
        for a in coco["annotations"]:
            for old, new in relabel.items():
                if a["category_id"] == ids[old]:
                    a["category_id"] = ids[new]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "annotations.json").write_text(json.dumps(coco))
    # the images hard-linked (copied across file systems), not a symlinked folder: the dataset
    # loader refuses an image that resolves outside its dataset folder (camtune.core.dataset.safe_image_path)
    images = dest / "images"
    if images.is_symlink():
        images.unlink()
    images.mkdir(exist_ok=True)
    for f in (src / "images").iterdir():
        if not (images / f.name).exists():
            try:
                os.link(f, images / f.name)
            except OSError:
                shutil.copy2(f, images / f.name)
    return dest


def scenario_dir(seed_dir: Path, name: str) -> Path:
    """A workspace whose artifacts/sample, artifacts/train_base and data are the seed's."""
    d = seed_dir / name
    (d / "artifacts").mkdir(parents=True, exist_ok=True)
    for link, target in (("artifacts/sample", seed_dir / "artifacts/sample"),
                         ("artifacts/train_base", seed_dir / "artifacts/train_base"),
                         ("data", seed_dir / "data")):
        if not (d / link).exists():
            (d / link).symlink_to(target.resolve())
    return d


class Run:
    def __init__(self, args):
        self.args = args
        self.ws = Path(args.workdir).resolve()
        self.t0 = time.monotonic()
        self.params_path = str(ROOT / "params.yaml")

    def stamp(self, msg):
        print(f"[{time.monotonic() - self.t0:7.1f}s] {msg}", flush=True)

    def common(self, seed: int) -> dict:
        from camtune.core.config import parse_overrides

        a = self.args
        out = {
            "sample_data.seed": seed, "sample_data.global_images": a.global_images,
            "sample_data.user_images": a.user_images, "sample_data.user_images_in_pool": a.user_images_in_pool,
            "training.input_size": a.input_size, "training.log_every": 50,
            "sample.eval_fraction": a.eval_fraction,
            "train_base.steps": a.base_steps, "train_base.learning_rate": a.base_lr,
            "finetune.steps": a.finetune_steps, "finetune.learning_rate": a.finetune_lr,
            **parse_overrides(a.sets),
        }
        return {k: v for k, v in out.items() if v is not None}

    def finetune_overrides(self, seed: int, steps: int, lr: float, **extra) -> dict:
        return {**self.common(seed), "finetune.steps": steps, "finetune.learning_rate": lr,
                "finetune.warmup_steps": min(10, steps - 1),
                "finetune.checkpoint_every": steps, **extra}

    def adopt(self, run: Path, sd: Path, params) -> None:
        """Copy a default run's sample data, sample, base and fine-tune (the healthy scenario)."""
        from camtune.contracts import artifacts

        skip = shutil.ignore_patterns("records*")
        for rel in (params.data.global_pool, params.data.user_dataset):
            if not (sd / rel).exists():
                shutil.copytree(run / rel, sd / rel)
        for rel in (artifacts.SAMPLE_DIR, artifacts.TRAIN_BASE_DIR):
            if not (sd / rel).exists():
                shutil.copytree(run / rel, sd / rel, ignore=skip)
        healthy = scenario_dir(sd, "healthy") / artifacts.FINETUNE_DIR
        if not healthy.exists():
            shutil.copytree(run / artifacts.FINETUNE_DIR, healthy, ignore=skip)
        self.stamp(f"seed {params.sample_data.seed}: sample data, sample, base and healthy fine-tune from {run}")

    # ---------------------------------------------------------------- training
    def train(self, seed: int):
        from camtune.contracts import artifacts
        from camtune.core import config
        from camtune.steps.sample import draw as sampling
        from camtune.steps import finetune as ft, train_base as tb
        from camtune.steps.sample_data import generate
        from camtune.core.dataset import load_dataset
        
        a = self.args
        sd = self.ws / f"seed{seed}"
        sd.mkdir(parents=True, exist_ok=True)
        os.chdir(sd)
        common = self.common(seed)
        params = config.load(self.params_path, common)
        if a.reuse and seed == a.seeds[0] and not (artifacts.TRAIN_BASE_DIR / "train_log.json").exists():
            self.adopt(a.reuse.resolve(), sd, params)
        if not (artifacts.TRAIN_BASE_DIR / "train_log.json").exists():   # written last: an interrupted base is trained again
            generate(params)
            sampling.write_outputs(artifacts.SAMPLE_DIR, sampling.sample_from_params(params))
            tb.train_base(params)
            self.stamp(f"seed {seed}: base trained ({params.train_base.steps} steps at {params.training.input_size} px)")
        replay = json.loads(artifacts.REPLAY.read_text())  # rewritten per scenario as smaller manifests
        user_src = sd / params.data.user_dataset

        def finetune(name: str, overrides: dict, replay_manifest: dict | None = None):
            d = scenario_dir(sd, name)
            if (d / artifacts.TRAINED_ON).exists():
                return d
            os.chdir(d)
            rm = None
            if replay_manifest is not None:
                rm = d / "replay.json"
                rm.write_text(json.dumps(replay_manifest))
            t = time.monotonic()
            ft.finetune(config.load(self.params_path, overrides), replay_manifest=rm)
            self.stamp(f"seed {seed}: {name} fine-tuned in {time.monotonic() - t:.0f} s")
            os.chdir(sd)
            return d

        wanted = set(a.scenarios)
        if wanted & {"healthy", "tiny"}:
            finetune("healthy", common)
        if "overfit" in wanted:
            # the same holdout (hash-based), only a few user images to train on, replay cut to as
            # many, many steps at a high rate
            hold = set(ft.user_split(params, replay.get("user_images_in_base_train", []))[2])
            seen = set(replay.get("user_images_in_base_train", []))
            user = load_dataset(user_src).of_user(params.user.id).verified()
            train_ids = [int(i) for i in user.images["id"] if int(i) not in hold | seen][:a.overfit_user_images]
            tiny = copy_dataset(user_src, sd / "data/overfit_user", sorted(hold | set(train_ids)))
            few = {**replay, "image_ids": replay["image_ids"][:len(train_ids)]}
            few["count"] = len(few["image_ids"])
            few.pop("repeats", None)
            finetune("overfit", self.finetune_overrides(seed, a.overfit_steps, a.overfit_lr,
                                                        **{"data.user_dataset": str(tiny),
                                                           "finetune.warmup_steps": 0}), few)
        no_replay = {**replay, "image_ids": [], "count": 0}
        no_replay.pop("repeats", None)
        if "label_shift" in wanted:
            shifted = copy_dataset(user_src, sd / "data/label_shift_user", relabel={"cat": "dog"})
            finetune("label_shift", self.finetune_overrides(seed, a.shift_steps, a.shift_lr,
                                                            **{"data.user_dataset": str(shifted)}),
                     None if a.shift_replay else no_replay)
        if "forgetting" in wanted:
            finetune("forgetting", self.finetune_overrides(seed, a.forget_steps, a.forget_lr), no_replay)
        if wanted & set(INCUMBENT):
            finetune("healthy", common)
            finetune("barely", self.finetune_overrides(
                seed, a.barely_steps, params.finetune.learning_rate,
                **{"finetune.warmup_steps": 0}))
            for name in ("healthy", "barely"):
                self.export_incumbent(seed, sd / name)

    def export_incumbent(self, seed: int, d: Path) -> Path:
        """The fine-tune in `d` exported to int8 by the real export step (d/incumbent_export), as
        the model a user would run; its fidelity limits are lifted (not under test here)."""
        from camtune.core import config
        from camtune.steps.export.build import export

        out = d / "incumbent_export"
        if (out / "model.tflite").exists():
            return out
        cwd = os.getcwd()
        os.chdir(d)
        try:
            t = time.monotonic()
            meta = export(config.load(self.params_path, {**self.common(seed), "export.max_map_drop": 1.0,
                                                         "export.max_frigate_recall_drop": 1.0}), out)
        finally:
            os.chdir(cwd)
        fid = {k: v.get("frigate") for k, v in meta.get("fidelity", {}).get("sets", {}).items()}
        self.stamp(f"seed {seed}: {d.name} exported to int8 in {time.monotonic() - t:.0f} s; fidelity {fid}")
        return out

    def publish_incumbent(self, seed: int, d: Path, src: Path) -> Path:
        """`src`'s int8 export as the user's current model in a registry of the scenario's own,
        with its lineage (the user images it trained on), through the registry's own API."""
        from camtune.core import config
        from camtune.core.config import RegistryParams
        from camtune.contracts.registry import open_registry

        root = d / "registry"
        reg = open_registry(RegistryParams(kind="local", root=str(root)))
        user_id = config.load(self.params_path, self.common(seed)).user.id
        model_id = f"incumbent-{src.name}"
        if reg.current_model(user_id) is None:
            trained_on = json.loads((src / "artifacts/finetune/trained_on.json").read_text())
            lineage = d / "incumbent_lineage.json"
            lineage.write_text(json.dumps({"user_id": user_id, "model_id": model_id,
                                           "image_ids": sorted(trained_on["user"]["image_ids"])}))
            files = {n: reg.put_model_file(user_id, model_id, n, p) for n, p in (
                ("model.tflite", src / "incumbent_export/model.tflite"),
                ("labelmap.txt", src / "incumbent_export/labelmap.txt"), ("lineage.json", lineage))}
            reg.commit(user_id, {"model_id": model_id, "blessed": True, "verdict": "blessed", "promoted": True,
                                 "files": {n: {"sha256": f["sha256"], "size": f["size"]} for n, f in files.items()}})
        return root

    # ---------------------------------------------------------------- gate
    def gate(self, seed: int) -> None:
        from camtune.contracts import artifacts
        from camtune.core import config
        from camtune.steps import evaluate as evaluation

        a = self.args
        sd = self.ws / f"seed{seed}"
        for name in a.scenarios:
            src = "healthy" if name == "tiny" else name
            d = scenario_dir(sd, name)
            overrides = {**self.common(seed), "evaluate.gate.seed": seed}
            if name == "noise":   # the comparisons only (module docstring)
                overrides.update({"evaluate.gate.min_user_map50": 0.0, "evaluate.gate.min_global_map50": 0.0,
                                  "evaluate.gate.min_user_frigate_recall": 0.0})
            if name == "overfit":
                overrides["data.user_dataset"] = str(sd / "data/overfit_user")
            if name == "label_shift":
                overrides["data.user_dataset"] = str(sd / "data/label_shift_user")
            if name == "tiny":
                ft = d / "artifacts/finetune"
                if not ft.exists():
                    shutil.copytree(sd / "healthy/artifacts/finetune", ft, symlinks=True,
                                    ignore=shutil.ignore_patterns("records*"))
                hold = json.loads((sd / "healthy/artifacts/finetune/holdout.json").read_text())
                hold["image_ids"] = hold["image_ids"][:a.tiny_holdout]
                hold["count"] = len(hold["image_ids"])
                (ft / "holdout.json").write_text(json.dumps(hold))
            if name == "noise":
                # the "tuned" model is the base itself; the holdout is the healthy run's
                ft = d / "artifacts/finetune"
                ft.mkdir(parents=True, exist_ok=True)
                if not (ft / "model").exists():
                    shutil.copytree(sd / "artifacts/train_base/model", ft / "model")
                shutil.copy(sd / "healthy/artifacts/finetune/holdout.json", ft / "holdout.json")
            if name in INCUMBENT:
                new, old = INCUMBENT[name]
                src = new
                if not (sd / old / "incumbent_export/model.tflite").exists():
                    self.stamp(f"seed {seed}: {name}: no incumbent ({old} not exported); skipped")
                    continue
                ft = d / "artifacts/finetune"
                if not ft.exists() and (sd / new / "artifacts/finetune/model").exists():
                    shutil.copytree(sd / new / "artifacts/finetune", ft, symlinks=True,
                                    ignore=shutil.ignore_patterns("records*"))
                overrides.update({"publish.registry.root": str(self.publish_incumbent(seed, d, sd / old)),
                                  "evaluate.incumbent.source": "registry"})
            if not (d / "artifacts/finetune/model").exists():
                self.stamp(f"seed {seed}: {name}: no model ({src} not trained); skipped")
                continue
            os.chdir(d)
            try:
                params = config.load(self.params_path, overrides)
                out = evaluation.evaluate(params)
            finally:
                os.chdir(sd)
            g = json.loads((d / artifacts.GATE).read_text())
            self.record(self.row(seed, name, g, params.evaluate.gate.seed))
            self.stamp(f"seed {seed}: {name}: {g['verdict']} ({g.get('summary', '')})"
                       + (f"; incumbent {g['incumbent'].get('verdict')}, promote {g.get('promote')}"
                          if name in INCUMBENT else ""))
            # other salts (bootstrap seeds) on the same detections: no prediction again
            for salt in range(1, a.salts):
                gp = params.evaluate.gate.model_copy(update={"seed": params.evaluate.gate.seed + 1000 * salt})
                g = out.regate(gp)
                self.record(self.row(seed, name, g, gp.seed))
                self.stamp(f"seed {seed}: {name}, salt {gp.seed}: {g['verdict']} ({g.get('summary', '')})")


    def record(self, row: dict) -> None:
        with open(self.ws / "scenarios.jsonl", "a") as f:  # one line per verdict, as they come
            f.write(json.dumps(row) + "\n")

    @staticmethod
    def row(seed: int, name: str, g: dict, salt: int) -> dict:
        if name in INCUMBENT:
            return incumbent_row(seed, name, g, salt)
        checks = {c["name"]: c for c in g["checks"]}
        deciding = g.get("deciding") or []
        c = checks.get(deciding[0]) if deciding else None
        want = EXPECTED[name]
        ok = (g["verdict"] != "not_blessed") if want == "not not_blessed" else g["verdict"] == want
        if ok and name in EXPECTED_CHECK:
            ok = bool(set(EXPECTED_CHECK[name]) & set(g.get("failed", [])))
        interval = "" if c is None or c.get("interval") is None else \
            f"{c['point']:+.3f} [{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}] vs {c['threshold']:+.3f}"
        return {"seed": seed, "salt": salt, "scenario": name,
                "expected": want + (f" ({' or '.join(EXPECTED_CHECK[name])})" if name in EXPECTED_CHECK else ""),
                "verdict": g["verdict"], "deciding": ", ".join(deciding) or "-", "interval": interval,
                "match": ok}


def incumbent_row(seed: int, name: str, g: dict, salt: int) -> dict:
    """The incumbent comparison's verdict, its user-holdout recall check, the worse cameras."""
    inc = g.get("incumbent") or {}
    checks = {c["name"]: c for c in inc.get("checks", [])}
    c = checks.get("incumbent_user_recall")
    want = EXPECTED[name].removeprefix("incumbent: ")
    interval = "" if c is None or c.get("interval") is None else \
        f"{c['point']:+.3f} [{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}] vs {c['threshold']:+.3f}"
    deciding = ", ".join(inc.get("failed") or inc.get("inconclusive") or []) or "-"
    cams = inc.get("worse_cameras") or []
    return {"seed": seed, "salt": salt, "scenario": name, "expected": EXPECTED[name],
            "verdict": f"incumbent: {inc.get('verdict')} (gate {g['verdict']}, promote {g.get('promote')})"
                       + (f", worse camera {', '.join(cams)}" if cams else ""),
            "deciding": deciding, "interval": interval, "match": inc.get("verdict") == want}


def main(argv=None) -> int:
    args = parse_args(argv)
    run = Run(args)
    run.ws.mkdir(parents=True, exist_ok=True)
    run.stamp(f"workspace {run.ws}")
    if args.phase in ("train", "all"):
        for seed in args.seeds:
            run.train(seed)
    if args.phase == "train":
        return 0
    if args.phase != "table":
        for seed in args.seeds:
            run.gate(seed)
    return print_table(run.ws / "scenarios.jsonl")


def print_table(path: Path) -> int:
    """The newest row per (scenario, seed, salt) of every gate run into this workspace."""
    rows = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        r = json.loads(line)
        rows[(SCENARIOS.index(r["scenario"]), r["seed"], r["salt"])] = r
    rows = [rows[k] for k in sorted(rows)]
    print()
    print("| scenario | seed | salt | expected | verdict | deciding check | interval (point [lo, hi] vs threshold) | match |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['seed']} | {r['salt']} | {r['expected']} | {r['verdict']} | {r['deciding']} | "
              f"{r['interval']} | {'yes' if r['match'] else 'NO'} |")
    hits = sum(r["match"] for r in rows)
    print(f"\n{hits}/{len(rows)} verdicts as expected")
    return 0 if rows and hits == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
