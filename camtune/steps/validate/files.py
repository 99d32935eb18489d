"""File rules: every image record points at a real, safe, decodable image of the declared size.

Order matters for safety: the path is checked before anything is opened (no absolute path, no
`..`, no symlink leading out of the dataset folder), and the pixel count is read from the image
header before any pixel is decoded, so a decompression bomb is refused without being inflated.
Files are only ever opened for reading. Work is I/O bound, so images are checked on a thread pool.
"""
from __future__ import annotations

import hashlib
import math
import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from camtune.core.config import ValidateParams
from camtune.core.dataset import os_error_finding
from camtune.core.dataset import resolve_inside as dataset_resolve_inside
from camtune.model import images as model_images
from camtune.steps.validate.findings import Finding, shorten


@dataclass(frozen=True)
class FileCheck:
    image_id: object
    file_name: object
    findings: tuple[Finding, ...]
    sha256: str | None = None     # of the bytes, when the file could be read
    decoded: bool = False
    identity: tuple[int, int] | None = None  # (st_dev, st_ino): the file, whatever the spelling


def _q(name: str) -> str:
    """A file name for a message: quoted, escaped, at most 100 characters (report.json keeps it whole)."""
    return shorten(repr(name), 100)


# the one checked path resolver, shared with every reader of dataset files (camtune.core.dataset)
resolve_inside = dataset_resolve_inside


def check_file(root: Path, image_id, file_name, width, height, sha256, v: ValidateParams) -> FileCheck:
    def finding(code, msg, severity="error", **data):
        return Finding(severity, code, msg, image_id=image_id, file=fname, data=data)

    fname = file_name if isinstance(file_name, str) else None
    if fname is None:
        return FileCheck(image_id, file_name, ())  # a schema finding already names it
    path, code, msg = resolve_inside(root, fname)
    if code:
        return FileCheck(image_id, fname, (finding(code, msg),))
    try:
        # stat before open: opening a FIFO blocks, reading a device never ends
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return FileCheck(image_id, fname, (finding(
                "FILE_NOT_REGULAR", f"{_q(fname)} is a {_kind(st.st_mode)}, not an image file"),))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())  # what was opened (the path may have been swapped)
            if not stat.S_ISREG(st.st_mode):
                return FileCheck(image_id, fname, (finding(
                    "FILE_NOT_REGULAR", f"{_q(fname)} is a {_kind(st.st_mode)}, not an image file"),))
            identity = (st.st_dev, st.st_ino)
            if st.st_size > v.max_image_bytes:  # every step's decoder refuses it (model.images)
                return FileCheck(image_id, fname, (finding(
                    "FILE_TOO_LARGE", f"{_q(fname)}: {st.st_size} bytes exceeds validate.max_image_bytes="
                                      f"{v.max_image_bytes}; not read",
                    bytes=int(st.st_size), max_bytes=v.max_image_bytes),), identity=identity)
            digest = _sha256(fh)  # streamed: a huge non-image file is never held in memory
            fh.seek(0)
            return _check_image(fh, fname, image_id, width, height, sha256, digest, identity, v, finding)
    except OSError as exc:
        code, reason = os_error_finding(exc)
        return FileCheck(image_id, fname, (finding(code, f"{_q(fname)}: {reason}"),))


def _sha256(fh, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    while block := fh.read(chunk):
        h.update(block)
    return h.hexdigest()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _check_image(fh, fname, image_id, width, height, sha256, digest, identity, v, finding) -> FileCheck:
    out = []
    if isinstance(sha256, str) and sha256 and sha256 != digest:
        out.append(finding("SHA256_MISMATCH", f"{_q(fname)}: sha256 is {digest}, declared {sha256}"))
    decoded = False
    try:
        with warnings.catch_warnings():
            # PIL warns (or raises, at 2x its own limit) on large images while reading the header;
            # our own limit below decides, and a raise is the same verdict
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fh)  # reads the header only
        with img:
            real_w, real_h = img.size
            if real_w * real_h > v.max_pixels:
                out.append(finding("PIXEL_BOMB", f"{_q(fname)}: {real_w}x{real_h} = {real_w * real_h} pixels "
                                   f"exceeds validate.max_pixels={v.max_pixels}; not decoded",
                                   width=real_w, height=real_h, pixels=real_w * real_h, max_pixels=v.max_pixels))
                return FileCheck(image_id, fname, tuple(out), digest, identity=identity)
            fmt = model_images.image_format(img)  # a phone's multi-frame JPEG (MPO) is a JPEG
            if fmt not in v.allowed_formats:
                out.append(finding("FORMAT_NOT_ALLOWED", f"{_q(fname)}: format {img.format} is not one of "
                                   f"validate.allowed_formats {list(v.allowed_formats)}"))
            reason = model_images.unsupported_reason(img)
            if reason:
                out.append(finding("MODE_UNSUPPORTED", f"{_q(fname)}: {reason}"))
            orientation = model_images.exif_orientation(img)
            if orientation is not None:
                out.append(finding("EXIF_ORIENTATION", f"{_q(fname)}: EXIF orientation {orientation} asks for a "
                                   "rotation/flip that training ignores (it uses the stored pixels); if the boxes "
                                   "were drawn on the rotated view, re-save the image rotated", "warning"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()  # the real decode: a truncated or corrupt file fails here
            decoded = True
    except Image.DecompressionBombError as exc:
        out.append(finding("PIXEL_BOMB", f"{_q(fname)}: {exc}; not decoded"))
        return FileCheck(image_id, fname, tuple(out), digest, identity=identity)
    except UnidentifiedImageError:
        out.append(finding("FILE_UNDECODABLE", f"{_q(fname)}: not an image file PIL can identify"))
        return FileCheck(image_id, fname, tuple(out), digest, identity=identity)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # PIL's decoders raise these on corrupt data
        out.append(finding("FILE_UNDECODABLE", f"{_q(fname)}: cannot be decoded: {exc}"))
        return FileCheck(image_id, fname, tuple(out), digest, identity=identity)
    if (width, height) != (real_w, real_h):
        declared = f"{_num(width)}x{_num(height)}"
        out.append(finding("SIZE_MISMATCH", f"{_q(fname)}: the image is {real_w}x{real_h}, declared {declared}",
                           width=real_w, height=real_h, declared_width=_plain_num(width),
                           declared_height=_plain_num(height)))
    return FileCheck(image_id, fname, tuple(out), digest, decoded, identity)


def _plain_num(v) -> int | float | None:
    """A declared size as plain JSON (a broken record may hold anything): None when not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() else f


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
    findings.extend(same_file(checks))
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
        image_id = None if pd.isna(r.id) else int(r.id)
        return check_file(root, image_id, r.file_name, w, h, r.sha256, v)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, rows))


def same_file(checks: list[FileCheck]) -> list[Finding]:
    """FILE_SAME_AS for records that name one file under different spellings (./a.jpg, a//a.jpg,
    a symlink or hard link, another case on a case-insensitive file system): one (device, inode)."""
    first: dict[tuple[int, int], FileCheck] = {}
    out = []
    for c in checks:
        if c.identity is None:
            continue
        seen = first.setdefault(c.identity, c)
        if seen is not c and seen.file_name != c.file_name:  # the same spelling is DUP_FILE_NAME
            out.append(Finding("error", "FILE_SAME_AS",
                               f"{_q(c.file_name)} is the same file as {_q(seen.file_name)} of image {seen.image_id}",
                               image_id=c.image_id, file=c.file_name))
    return out


def duplicate_content(checks: list[FileCheck]) -> list[Finding]:
    """DUP_CONTENT for byte-identical distinct files (one file named twice is DUP_FILE_NAME, a table
    rule, or FILE_SAME_AS)."""
    by_digest: dict[str, list[FileCheck]] = {}
    for c in checks:
        if c.sha256:
            by_digest.setdefault(c.sha256, []).append(c)
    out = []
    for group in by_digest.values():
        names = {c.identity for c in group}
        if len(names) < 2:
            continue
        first = group[0]
        for c in group[1:]:
            if c.identity != first.identity:
                out.append(Finding("warning", "DUP_CONTENT",
                                   f"{_q(c.file_name)} has the same content as {_q(first.file_name)} "
                                   f"(image {first.image_id}); a duplicate can leak between train and holdout",
                                   image_id=c.image_id, file=c.file_name))
    return out
