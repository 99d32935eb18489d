"""atomic.py: outputs replace the old ones whole, and get the mode any new file would get."""
from __future__ import annotations

import os

import pytest

from camtune.core import atomic


def mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_written_files_and_folders_get_the_umask_mode(tmp_path, umask_022):
    src = atomic.write_text(tmp_path / "a.txt", "x")
    copied = atomic.copy_file(src, tmp_path / "b.txt")
    with atomic.replacing(tmp_path / "c.bin") as tmp:
        open(tmp, "wb").close()
    with atomic.output_dir(tmp_path / "out") as out:
        atomic.write_json(out / "r.json", {"k": 1})
    assert [mode(p) for p in (src, copied, tmp_path / "c.bin", tmp_path / "out/r.json")] == [0o644] * 4
    assert mode(tmp_path / "out") == 0o755
    os.umask(0o077)  # a private umask is honoured too
    assert mode(atomic.write_text(tmp_path / "p.txt", "x")) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic.replacing(tmp_path / "a.txt") as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash")
    assert (tmp_path / "a.txt").read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
