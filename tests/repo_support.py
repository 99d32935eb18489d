"""A throwaway git copy of this repository, for tests (and benchmarks) that run DVC or the
pipeline the way a user would, without touching the real checkout."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_repo(dest: Path) -> Path:
    """The repository's files as git sees them (tracked + untracked-not-ignored)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def git_commit_all(repo: Path, message: str = "copy") -> None:
    """Make `repo` a git repository with everything in it committed (DVC needs git)."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
