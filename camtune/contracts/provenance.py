"""What a model is and where it came from, computed the same way by whoever needs it (publish
writes it into the registry; the run report shows it before anything is published): the content id
of an exported model and of a base checkpoint, the git revision, DVC's hashes of the data."""
from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml

from camtune.core import atomic
from camtune.contracts.artifacts import read_json
from camtune.core.config import Params
from camtune.core.dataset import file_sha256
from camtune.core.errors import StepFailed
from camtune.contracts.registry import check_segment


# the files a model id is derived from (those present); model.onnx only when export built it, so
# the ids of models without one are unchanged
MODEL_ID_FILES = ("model.tflite", "model_edgetpu.tflite", "labelmap.txt", "model.onnx")


def content_model_id(user_id: str, files: dict[str, Path]) -> str:
    """Same model files + same user = same id (the idempotency key); 16 hex chars."""
    h = hashlib.sha256(f"camtune-model-v1\0{user_id}\0".encode())
    for name in MODEL_ID_FILES:
        if name in files:
            h.update(f"{name}\0{file_sha256(files[name])}\0".encode())
    return h.hexdigest()[:16]


def dvc_hashes(params: Params, lock_path: Path = Path("dvc.lock")) -> dict:
    """DVC's hashes of the data the model came from: the finetune stage's deps in dvc.lock (what
    `dvc repro` actually used), else computed now with DVC's own hashing for the data folders."""
    if lock_path.is_file():
        lock = yaml.safe_load(lock_path.read_text()) or {}
        stage = (lock.get("stages") or {}).get("finetune")
        if stage:
            deps = {d["path"]: {k: v for k, v in d.items() if k != "path"} for d in stage.get("deps", [])}
            return {"source": str(lock_path), "stage": "finetune", "deps": deps}
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db.local import LocalHashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    import tempfile

    fs = LocalFileSystem()
    out = {}
    with tempfile.TemporaryDirectory() as odb_dir:
        odb = LocalHashFileDB(fs, odb_dir)
        for path in (params.data.user_dataset, params.data.global_pool):
            if Path(path).exists():
                _, meta, obj = build(odb, str(Path(path).resolve()), fs, "md5", dry_run=True)
                out[path] = {"md5": obj.hash_info.value, "size": meta.size, "nfiles": meta.nfiles}
    return {"source": "computed (dvc_data md5)", "deps": out}


def git_revision(cwd: Path = Path(".")) -> dict:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    rev = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"rev": rev, "dirty": bool(status) if status is not None else None}


# ------------------------------------------------------------------------------------------
# the base model


_CKPT_RE = re.compile(r'^model_checkpoint_path:\s*"([^"]+)"', re.M)


def base_checkpoint_files(model_dir: Path, staging: Path) -> dict[str, Path]:
    """The files that make a Model Garden model_dir usable for fine-tuning: its top-level config
    and label files plus the NEWEST checkpoint only (with a `checkpoint` index naming just it)."""
    ckpt_index = model_dir / "checkpoint"
    if not ckpt_index.is_file():
        raise StepFailed(f"{model_dir}: no 'checkpoint' file; not a trained model folder")
    m = _CKPT_RE.search(ckpt_index.read_text())
    if not m:
        raise StepFailed(f"{ckpt_index}: names no model_checkpoint_path")
    latest = Path(m.group(1)).name
    files: dict[str, Path] = {}
    for p in sorted(model_dir.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.name == "checkpoint":
            continue
        if p.name.startswith("ckpt-") and not p.name.startswith(latest + "."):
            continue  # older checkpoints kept by CheckpointManager
        files[p.name] = p
    if not any(n.startswith(latest + ".") for n in files):
        raise StepFailed(f"{model_dir}: checkpoint {latest} is named but its files are missing")
    atomic.write_text(staging / "checkpoint",
                      f'model_checkpoint_path: "{latest}"\nall_model_checkpoint_paths: "{latest}"\n')
    files["checkpoint"] = staging / "checkpoint"
    return files


def base_identity(model_dir: Path, files: dict[str, Path]) -> tuple[str, dict]:
    """(base_id, provenance). A base pulled from the registry keeps its id; a trained one gets a
    content id."""
    pulled = model_dir / "registry_base.json"
    if pulled.is_file():
        return check_segment(read_json(pulled)["base_id"], "base id"), {"pulled_from_registry": True}
    h = hashlib.sha256(b"camtune-base-v1\0")
    for name in sorted(files):
        if name != "checkpoint":
            h.update(f"{name}\0{file_sha256(files[name])}\0".encode())
    return f"base-{h.hexdigest()[:12]}", {"pulled_from_registry": False}
