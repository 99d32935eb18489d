"""Atomic outputs: a stage writes into a temporary sibling and renames at the end, so a crash
never leaves a half-written file or folder that a later stage would trust.

The temporary file (mkstemp) and folder (mkdtemp) are created private (0600 / 0700); before the
rename they get the mode the user's umask gives any new file or folder (0644 / 0755 by default),
so a Frigate container running as another user can read an installed model."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from camtune.core.errors import StepFailed


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: set and restore
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """What `open(path, "w")` would give a new file: 0o666 minus the umask."""
    return 0o666 & ~_umask()


def new_dir_mode() -> int:
    """What `mkdir` would give a new folder: 0o777 minus the umask."""
    return 0o777 & ~_umask()


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[str]:
    """Yield a temporary sibling of `path` to fill; renamed over `path` on success, removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def copy_file(src: str | Path, dest: str | Path) -> Path:
    """Copy `src` to `dest` through a temporary sibling, fsynced, then renamed into place."""
    with replacing(dest) as tmp:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    return Path(dest)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj, *, indent: int | None = 2) -> Path:
    # sort_keys so the same content is the same bytes (DVC hashes, reproducible manifests)
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n")


# Written into a folder a user may name (`--out DIR`): the proof that camtune made it, so a
# later run may replace it. A folder without it is never replaced.
OWNER_FILE = ".camtune-output.json"


class NotOurs(StepFailed):
    """An output folder exists and camtune did not write it; nothing was touched."""


def check_ours(path: str | Path, writer: str, legacy_names: frozenset[str] = frozenset(),
               legacy_required: frozenset[str] = frozenset()) -> None:
    """Refuse `path` unless it is absent, an empty folder, a folder holding camtune's owner file,
    or (written before the owner file existed) a folder of only `legacy_names` entries that has
    all of `legacy_required` (the files every such older output had)."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise NotOurs(f"{path}: exists and is not a folder camtune wrote; refusing to replace it "
                      f"(choose another --out)")
    entries = {p.name for p in path.iterdir()}
    if not entries or OWNER_FILE in entries or \
            (legacy_required and legacy_required <= entries <= legacy_names):
        return
    shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
    raise NotOurs(f"{path}: exists, is not empty ({shown}) and has no {OWNER_FILE}: it was not written by "
                  f"camtune's {writer}, and replacing it would delete those files. Choose a new or empty "
                  f"folder for --out; nothing was changed.")


@contextlib.contextmanager
def output_dir(path: str | Path, *, owner: str | None = None, legacy_names: frozenset[str] = frozenset(),
               legacy_required: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `path` whole, on error it vanishes.

    The previous `path` (if any) stays untouched until the new one is complete. With `owner` (a
    folder the user names), `path` is replaced only if camtune wrote it (`check_ours`), and the
    new folder carries the owner file.
    """
    path = Path(path)
    if owner is not None:
        check_ours(path, owner, legacy_names, legacy_required)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if owner is not None:
            write_json(tmp / OWNER_FILE, {"writer": owner})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if owner is not None:
        check_ours(path, owner, legacy_names, legacy_required)  # again: something may have appeared meanwhile
    os.chmod(tmp, new_dir_mode())
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
