"""File rules: every image record points at a real, safe, decodable image of the declared size.

Order matters for safety: the path is checked before anything is opened (no absolute path, no
`..`, no symlink leading out of the dataset folder), and the pixel count is read from the image
header before any pixel is decoded, so a decompression bomb is refused without being inflated.
Files are only ever opened for reading. Work is I/O bound, so images are checked on a thread pool.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import pandas as pd
from PIL import Image, UnidentifiedImageError

from camtune.config import ValidateParams
from camtune.dataset import file_sha256
from camtune.validation.findings import Finding


@dataclass(frozen=True)
class FileCheck:
    image_id: object
    file_name: object
    findings: tuple[Finding, ...]
    sha256: str | None = None     # of the bytes, when the file could be read
    decoded: bool = False


def resolve_inside(root: Path, file_name: str) -> tuple[Path | None, str | None, str | None]:
    """(path, code, message): the file's path when it stays inside `root`, else a finding code."""
    if "\x00" in file_name:
        return None, "FILE_TRAVERSAL", "file_name contains a NUL byte"
    if PurePosixPath(file_name).is_absolute() or PureWindowsPath(file_name).is_absolute() \
            or PureWindowsPath(file_name).drive:
        return None, "FILE_ABSOLUTE", f"file_name {file_name!r} is an absolute path"
    if ".." in PurePosixPath(file_name.replace("\\", "/")).parts:
        return None, "FILE_TRAVERSAL", f"file_name {file_name!r} contains '..'"
    real_root = root.resolve()
    path = root / file_name
    real = path.resolve()  # follows every symlink on the way, including of parent folders
    if real != real_root and real_root not in real.parents:
        return None, "FILE_SYMLINK_OUT", f"file_name {file_name!r} resolves outside the dataset folder, to {real}"
    return path, None, None


def check_file(root: Path, image_id, file_name, width, height, sha256, v: ValidateParams) -> FileCheck:
    def finding(code, msg, severity="error"):
        return Finding(severity, code, msg, image_id=image_id, file=fname)

    fname = file_name if isinstance(file_name, str) else None
    if fname is None:
        return FileCheck(image_id, file_name, ())  # a schema finding already names it
    path, code, msg = resolve_inside(root, fname)
    if code:
        return FileCheck(image_id, fname, (finding(code, msg),))
    if not path.is_file():
        return FileCheck(image_id, fname, (finding("FILE_MISSING", f"{fname}: no such file"),))
    digest = file_sha256(path)  # streamed: a huge non-image file is never held in memory
    out = []
    if isinstance(sha256, str) and sha256 and sha256 != digest:
        out.append(finding("SHA256_MISMATCH", f"{fname}: sha256 is {digest}, declared {sha256}"))
    decoded = False
    try:
        with warnings.catch_warnings():
            # PIL warns (or raises, at 2x its own limit) on large images while reading the header;
            # our own limit below decides, and a raise is the same verdict
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # reads the header only
        with img:
            real_w, real_h = img.size
            if real_w * real_h > v.max_pixels:
                out.append(finding("PIXEL_BOMB", f"{fname}: {real_w}x{real_h} = {real_w * real_h} pixels "
                                   f"exceeds validate.max_pixels={v.max_pixels}; not decoded"))
                return FileCheck(image_id, fname, tuple(out), digest)
            if img.format not in v.allowed_formats:
                out.append(finding("FORMAT_NOT_ALLOWED", f"{fname}: format {img.format} is not one of "
                                   f"validate.allowed_formats {list(v.allowed_formats)}"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()  # the real decode: a truncated or corrupt file fails here
            decoded = True
    except Image.DecompressionBombError as exc:
        out.append(finding("PIXEL_BOMB", f"{fname}: {exc}; not decoded"))
        return FileCheck(image_id, fname, tuple(out), digest)
    except UnidentifiedImageError:
        out.append(finding("FILE_UNDECODABLE", f"{fname}: not an image file PIL can identify"))
        return FileCheck(image_id, fname, tuple(out), digest)
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's decoders raise these on corrupt data
        out.append(finding("FILE_UNDECODABLE", f"{fname}: cannot be decoded: {exc}"))
        return FileCheck(image_id, fname, tuple(out), digest)
    if (width, height) != (real_w, real_h):
        declared = f"{_num(width)}x{_num(height)}"
        out.append(finding("SIZE_MISMATCH", f"{fname}: the image is {real_w}x{real_h}, declared {declared}"))
    return FileCheck(image_id, fname, tuple(out), digest, decoded)


def _num(v) -> str:
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return "?"


def check_files(root: str | Path, images: pd.DataFrame, v: ValidateParams,
                workers: int | None = None) -> tuple[list[Finding], list[FileCheck]]:
    """Check every image record's file; also DUP_CONTENT across records. Returns (findings, checks)."""
    checks = check_file_records(root, images, v, workers)
    findings = [f for c in checks for f in c.findings]
    findings.extend(duplicate_content(checks))
    return findings, checks


def check_file_records(root: str | Path, images: pd.DataFrame, v: ValidateParams,
                       workers: int | None = None) -> list[FileCheck]:
    """The per-file checks of these image records, on a thread pool (PIL releases the GIL)."""
    root = Path(root)
    rows = list(images[["id", "file_name", "width", "height", "sha256"]].itertuples(index=False))
    workers = workers or min(8, (os.cpu_count() or 1) * 2)

    def one(r):
        w = None if pd.isna(r.width) else int(r.width)
        h = None if pd.isna(r.height) else int(r.height)
        return check_file(root, r.id, r.file_name, w, h, r.sha256, v)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, rows))


def duplicate_content(checks: list[FileCheck]) -> list[Finding]:
    """DUP_CONTENT for byte-identical files under different file names (the same file named twice
    is DUP_FILE_NAME, a table rule)."""
    by_digest: dict[str, list[FileCheck]] = {}
    for c in checks:
        if c.sha256:
            by_digest.setdefault(c.sha256, []).append(c)
    out = []
    for group in by_digest.values():
        names = {c.file_name for c in group}
        if len(names) < 2:
            continue
        first = group[0]
        for c in group[1:]:
            if c.file_name != first.file_name:
                out.append(Finding("warning", "DUP_CONTENT",
                                   f"{c.file_name} has the same content as {first.file_name} "
                                   f"(image {first.image_id}); a duplicate can leak between train and holdout",
                                   image_id=c.image_id, file=c.file_name))
    return out
