"""Frigate's `labelmap.txt` (one writer, one reader) and the check that a model's label set is the
one being worked with.

The file is `index label` per line, index = 0-based label index = the TFLite model's class id.
Like Frigate's own loader, a bare `label` line takes its line number as index. The reader returns
the names in index order and refuses (StepFailed, naming the file and line) what would make an
index ambiguous: a repeated index, a gap, an empty map.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from camtune.core.errors import StepFailed

LABELMAP_FILE = "labelmap.txt"
_LINE = re.compile(r"^\s*(\d+)\s+(.+?)\s*$")


def labelmap_text(label_names: Sequence[str]) -> str:
    """labelmap.txt's content: `index label` per line."""
    return "".join(f"{i} {name}\n" for i, name in enumerate(label_names))


def parse_labelmap(text: str, where: str | Path = LABELMAP_FILE) -> list[str]:
    """labelmap.txt's content -> label names by index (StepFailed naming `where` when unusable)."""
    by_index: dict[int, str] = {}
    for lineno, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        m = _LINE.match(line)
        idx, label = (int(m.group(1)), m.group(2)) if m else (lineno, line.strip())
        if idx in by_index:
            raise StepFailed(f"{where}: line {lineno + 1}: index {idx} appears twice")
        by_index[idx] = label
    if not by_index:
        raise StepFailed(f"{where}: empty label map")
    if sorted(by_index) != list(range(len(by_index))):
        raise StepFailed(f"{where}: indexes must be 0..{len(by_index) - 1}, got {sorted(by_index)}")
    return [by_index[i] for i in range(len(by_index))]


def read_labelmap(path: str | Path) -> list[str]:
    """A labelmap.txt file -> label names by index (StepFailed when missing or unusable)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StepFailed(f"{path}: label map not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StepFailed(f"{path}: cannot read the label map: {exc}") from None
    return parse_labelmap(text, path)


def check_labels(model_labels: Sequence[str], label_names: Sequence[str], where: str | Path) -> None:
    """A model whose label map differs from the labels being worked with would have every class
    matched to the wrong name: refuse it, naming the model and the difference."""
    got, want = list(model_labels), list(label_names)
    if got == want:
        return
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    detail = []
    if missing:
        detail.append(f"missing {missing}")
    if extra:
        detail.append(f"unknown {extra}")
    if not detail:
        detail.append("same labels in a different order")
    raise StepFailed(f"{where}: the model's label map {got} differs from labels.names {want} "
                     f"({'; '.join(detail)})")
