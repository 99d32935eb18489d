"""Run one training stage with Model Garden's own task and trainer (`train_lib.run_experiment`).

No loop of ours: orbit's controller runs the steps, saves checkpoints (`ckpt-N` in model_dir,
every `checkpoint_interval` steps) and TensorBoard summaries (`model_dir/train`). Re-running with
the same model_dir and the same experiment resumes from the newest checkpoint (orbit restores it;
the init checkpoint is only read when there is none). A different experiment or training set in
the same folder starts over, so stale checkpoints never mix in. Progress (step, loss, images/s,
ETA) comes from an orbit train action, called by the controller after every loop.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from camtune.core import atomic
from camtune.core.errors import StepFailed
from camtune.model.checkpoint import LABELS_FILE, latest_checkpoint, write_labels
from camtune.training import init_checkpoint, precise_bn

FINGERPRINT_FILE = "camtune_fingerprint.json"   # experiment + training data the checkpoints belong to
PROGRESS_FILE = "progress.jsonl"                 # one line per reported loop, survives kill -9
PRECISE_BN_FILE = "precise_bn.json"              # which checkpoint step has recomputed BN statistics

Progress = Callable[[dict], None]


def _print_progress(rec: dict) -> None:
    print(format_progress(rec), flush=True)


def format_progress(rec: dict) -> str:
    eta = rec.get("eta_s")
    eta_txt = "?" if eta is None else f"{int(eta) // 60}m{int(eta) % 60:02d}s"
    return (f"step {rec['step']}/{rec['total_steps']}  loss {rec['loss']:.4f} "
            f"(cls {rec.get('cls_loss', float('nan')):.4f} box {rec.get('box_loss', float('nan')):.5f})  "
            f"lr {rec.get('learning_rate', float('nan')):.5f}  {rec['images_per_s']:.1f} img/s  ETA {eta_txt}")


class ProgressAction:
    """An orbit train action: called with the loop's logs after every `steps_per_loop` steps."""

    def __init__(self, trainer, *, batch_size: int, total_steps: int, model_dir: Path,
                 stage: str, callbacks: list[Progress]):
        self.trainer = trainer
        self.batch_size = batch_size
        self.total_steps = total_steps
        self.path = Path(model_dir) / PROGRESS_FILE
        self.stage = stage
        self.callbacks = callbacks
        self.t_start = time.monotonic()
        self.t_last = self.t_start
        self.step_last = int(trainer.global_step.numpy())
        self.start_step = self.step_last
        self.records: list[dict] = []

    def __call__(self, output: dict) -> None:
        import numpy as np

        now = time.monotonic()
        step = int(self.trainer.global_step.numpy())
        dt, dsteps = now - self.t_last, step - self.step_last
        ips = dsteps * self.batch_size / dt if dt > 0 else 0.0
        # ETA from the mean rate since this run started, the first loop (tracing) excluded
        # once a second one exists
        rate_steps = step - (self.records[0]["step"] if self.records else self.start_step)
        rate_time = now - (self.records[0]["_t"] if self.records else self.t_start)
        eta = (self.total_steps - step) * rate_time / rate_steps if rate_steps > 0 else None
        vals = {k: float(np.asarray(v)) for k, v in output.items()
                if k in ("total_loss", "cls_loss", "box_loss", "model_loss", "learning_rate",
                         "training_loss")}
        rec = {"stage": self.stage, "step": step, "total_steps": self.total_steps,
               "loss": vals.get("total_loss", vals.get("training_loss", float("nan"))),
               **{k: v for k, v in vals.items() if k != "training_loss"},
               "images_per_s": ips, "steps_per_s": dsteps / dt if dt > 0 else 0.0,
               "eta_s": eta, "elapsed_s": now - self.t_start, "time": time.time()}
        with open(self.path, "a") as fh:  # appended, flushed: survives a kill -9
            fh.write(json.dumps(rec) + "\n")
        self.records.append({**rec, "_t": now})
        self.t_last, self.step_last = now, step
        for cb in self.callbacks:
            cb(rec)


@dataclass
class TrainResult:
    model_dir: Path
    checkpoint: str
    start_step: int           # step this run resumed from (0 = fresh)
    final_step: int
    wall_s: float
    restarted: bool           # an old, different experiment was cleared
    progress: list[dict] = field(default_factory=list)
    init: dict | None = None  # what the weights started from (init_checkpoint.describe)
    precise_bn: dict | None = None  # the BN statistics recompute of the final checkpoint

    @property
    def images_per_s(self) -> float:
        """Mean training throughput of this run, the first reported loop (graph tracing) excluded."""
        recs = self.progress
        if len(recs) < 2:
            return recs[0]["images_per_s"] if recs else 0.0
        steps = recs[-1]["step"] - recs[0]["step"]
        t = recs[-1]["elapsed_s"] - recs[0]["elapsed_s"]
        bs = recs[-1].get("_batch", None)
        return steps * bs / t if (bs and t > 0) else sum(r["images_per_s"] for r in recs[1:]) / (len(recs) - 1)


def fingerprint(exp, train_files: list[str], label_names: list[str], extra: dict | None = None) -> str:
    """What the checkpoints in a model_dir belong to: the experiment config (as Model Garden
    serialises it) + the training records' bytes + the label names (+ `extra` settings of ours)."""
    import yaml

    h = hashlib.sha256()
    h.update(yaml.safe_dump(exp.as_dict(), sort_keys=True).encode())
    h.update(json.dumps(label_names).encode())
    if extra:
        h.update(json.dumps(extra, sort_keys=True).encode())
    init = exp.task.init_checkpoint
    if init and Path(init + ".index").is_file():
        # a retrained base reuses the name ckpt-N: its index (tensor checksums) tells them apart
        h.update(Path(init + ".index").read_bytes())
    for f in sorted(train_files):
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def prepare_model_dir(model_dir: Path, fp: str) -> tuple[bool, bool]:
    """-> (resume, restarted). Keeps checkpoints only when they belong to this experiment + data."""
    saved = model_dir / FINGERPRINT_FILE
    if model_dir.exists() and any(model_dir.iterdir()):
        try:
            same = json.loads(saved.read_text())["fingerprint"] == fp
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            same = False
        if same:
            import tensorflow as tf
            return tf.train.latest_checkpoint(str(model_dir)) is not None, False
        shutil.rmtree(model_dir)
        model_dir.mkdir(parents=True)
        return False, True
    model_dir.mkdir(parents=True, exist_ok=True)
    return False, False


def make_strategy(exp):
    """Model Garden's distribute utils: default -> one device, mirrored, multi_worker_mirrored."""
    import tensorflow as tf
    from official.common import distribute_utils

    gpus = len(tf.config.list_logical_devices("GPU"))
    return distribute_utils.get_distribution_strategy(
        distribution_strategy=exp.runtime.distribution_strategy, num_gpus=gpus,
        all_reduce_alg=exp.runtime.all_reduce_alg)


def run(exp, model_dir: str | Path, *, label_names: list[str], stage: str = "base",
        progress: Progress | None = _print_progress,
        on_start: Callable[[object], None] | None = None,
        freeze_backbone_steps: int = 0, precise_bn_batches: int = 0) -> TrainResult:
    """Train `exp` (from `experiment.build_experiment_config`) into `model_dir`; resume when the
    folder already holds checkpoints of the same experiment and data. `on_start(trainer)` is called
    once the model is restored or initialised, before the first step. With an init checkpoint the
    restored / re-initialised variables are listed in `model_dir/init.json` (TrainResult.init);
    `freeze_backbone_steps` keeps the backbone's weights fixed for the first N steps. With
    `precise_bn_batches` > 0 the final checkpoint's BatchNorm statistics are recomputed on that many
    training batches (`precise_bn`) and the checkpoint is saved again under the same step."""
    import tensorflow as tf
    from official.core import task_factory, train_lib, train_utils

    model_dir = Path(model_dir)
    files = list(exp.task.train_data.input_path)
    if not files:
        raise StepFailed("no training records given (empty training set)")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise StepFailed(f"training records not found: {', '.join(missing)}")
    if exp.task.model.num_classes != len(label_names) + 1:
        raise StepFailed(f"experiment has {exp.task.model.num_classes - 1} classes, "
                         f"labels.names has {len(label_names)}")
    source = None
    if exp.task.init_checkpoint:
        source = init_checkpoint.check(exp, label_names)   # fails before anything is built
        exp.task.init_checkpoint = source.prefix

    fp = fingerprint(exp, files, label_names,
                     {"freeze_backbone_steps": freeze_backbone_steps} if freeze_backbone_steps else None)
    resume, restarted = prepare_model_dir(model_dir, fp)
    start_step = 0
    if resume:
        ckpt = latest_checkpoint(model_dir)
        try:
            start_step = int(train_utils.read_global_step_from_checkpoint(ckpt))
        except (ValueError, tf.errors.OpError) as exc:
            raise StepFailed(f"{ckpt}: checkpoint unreadable ({str(exc).splitlines()[0]}); "
                             f"delete {model_dir} to start over") from None
    train_utils.serialize_config(exp, str(model_dir))
    write_labels(model_dir, label_names)
    atomic.write_json(model_dir / FINGERPRINT_FILE, {"fingerprint": fp, "stage": stage})

    t0 = time.monotonic()
    seed = exp.task.train_data.seed
    if seed is not None:
        # same params + same data = same weights: seed python / numpy / TF (the weight init, the
        # parser's random augmentation); _sequential_inputs below makes the augmentation's order fixed
        tf.keras.utils.set_random_seed(int(seed))
    strategy = make_strategy(exp)
    with strategy.scope():
        task = task_factory.get_task(exp.task, logging_dir=str(model_dir))
    if seed is not None:
        _sequential_inputs(task)
    init_checkpoint.freeze_first_steps(task, freeze_backbone_steps)
    callbacks = [progress] if progress else []
    action_holder: list[ProgressAction] = []

    class _Runner(train_lib.OrbitExperimentRunner):
        # the progress action needs the trainer, which the runner builds: add it right after
        def _build_controller(self, trainer, evaluator, **kw):
            if trainer is not None:
                act = ProgressAction(trainer, batch_size=exp.task.train_data.global_batch_size,
                                     total_steps=exp.trainer.train_steps, model_dir=model_dir,
                                     stage=stage, callbacks=callbacks)
                action_holder.append(act)
                kw["train_actions"] = [*(kw.get("train_actions") or []), act]
            return super()._build_controller(trainer, evaluator, **kw)

    try:
        try:
            runner = _Runner(distribution_strategy=strategy, task=task, mode="train", params=exp,
                             model_dir=str(model_dir))
        except (ValueError, AssertionError, tf.errors.OpError) as exc:
            if source is None or resume:
                raise
            raise init_checkpoint.restore_failed(exc, exp, source) from None
        # orbit restored the newest checkpoint (or ran task.initialize from init_checkpoint)
        init = None
        if source is not None:
            if resume:
                init = init_checkpoint.read(model_dir)
            else:
                init = init_checkpoint.describe(runner.trainer.model, exp, source, label_names)
                init_checkpoint.write(model_dir, init)
            if init and progress:
                print(init_checkpoint.summary(init), flush=True)
        act = action_holder[0]
        act.start_step = act.step_last = int(runner.trainer.global_step.numpy())
        if on_start:
            on_start(runner.trainer)
        act.t_start = act.t_last = time.monotonic()
        runner.run()
        bn = _precise_bn(runner, task, exp, model_dir, precise_bn_batches, progress is not None)
    except tf.errors.NotFoundError as exc:
        raise StepFailed(f"{model_dir}: {str(exc).splitlines()[0]}") from None
    except (tf.errors.OpError, AssertionError, IndexError) as exc:  # IndexError: truncated ckpt
        where = exp.task.init_checkpoint or model_dir
        raise StepFailed(f"{where}: checkpoint or records corrupt or mismatched: "
                         f"{str(exc).splitlines()[0]}") from None
    final = int(runner.trainer.global_step.numpy())
    recs = [{**{k: v for k, v in r.items() if k != "_t"},
             "_batch": exp.task.train_data.global_batch_size} for r in act.records]
    return TrainResult(model_dir=model_dir, checkpoint=latest_checkpoint(model_dir),
                       start_step=start_step, final_step=final, wall_s=time.monotonic() - t0,
                       restarted=restarted, progress=recs, init=init, precise_bn=bn)


def _sequential_inputs(task) -> None:
    """Run the task's input pipeline on one thread. Model Garden's parser draws its augmentation
    (flip, scale jitter) from stateful random ops inside a parallel map, so which image gets which
    draw depends on thread timing; on one thread it follows the (seeded) element order. TF's own
    op determinism would do this too, but its tf.data function split fails on this parser."""
    import tensorflow as tf

    build = task.build_inputs

    def build_inputs(params, input_context=None):
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        return build(params, input_context).with_options(options)

    task.build_inputs = build_inputs


def _precise_bn(runner, task, exp, model_dir: Path, batches: int, verbose: bool) -> dict | None:
    """Recompute the BN statistics of the finished model and save them under the final step (once
    per step and batch count: a resumed, finished run does not redo it)."""
    if batches <= 0:
        return None
    step = int(runner.trainer.global_step.numpy())
    marker = model_dir / PRECISE_BN_FILE
    try:
        done = json.loads(marker.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        done = None
    if done and done.get("step") == step and done.get("batches_asked") == batches:
        return done
    t = time.monotonic()
    # on a copy of the final weights built outside the distribution strategy (the way evaluate
    # and export rebuild it), then copied into the trainer's model and saved under the same step
    from camtune.model.checkpoint import restore_model

    fresh = task.build_model()
    restore_model(fresh, latest_checkpoint(model_dir))
    used = precise_bn.recalibrate(fresh, task.build_inputs(exp.task.train_data), batches)
    precise_bn.copy_statistics(fresh, runner.trainer.model)
    # rewritten in place: CheckpointManager.save skips a step it has already saved (silently)
    runner.trainer.checkpoint.write(latest_checkpoint(model_dir))
    rec = {"step": step, "batches_asked": batches, "batches": used,
           "images": used * exp.task.train_data.global_batch_size,
           "layers": len(precise_bn.batchnorm_layers(runner.trainer.model)),
           "seconds": round(time.monotonic() - t, 1)}
    atomic.write_json(marker, rec)
    if verbose:
        print(f"precise BN: statistics of {rec['layers']} BatchNorm layers recomputed on {rec['images']} "
              f"training images ({rec['seconds']} s), saved as ckpt-{step}", flush=True)
    return rec


def read_progress(model_dir: str | Path) -> list[dict]:
    """Every progress line of every run in this model_dir (resumed runs included)."""
    p = Path(model_dir) / PROGRESS_FILE
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill -9
            continue
    return out
