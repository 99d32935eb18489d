"""What the validate step reports: one `Finding` per problem, gathered into a `ValidationReport`.

Every rule has its own code (`RULES`), so a user, a test or a dashboard can tell what is wrong
without parsing messages. A finding names the image id, the annotation id and the file where
it can, so the user can go and fix that exact record, and carries its figures in `data` (e.g. an
unlabeled object's label, score and box): what the report draws is read from there, never parsed
back out of the English message.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from pandas import NA as _NA

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# code -> (check it belongs to, what it means). The check names group codes in the report.
# Listed in causal order: report.json and stderr list findings in this order, so a cause (a
# schema violation, an unknown label) comes before the findings it makes other checks raise.
RULES: dict[str, tuple[str, str]] = {
    # the step itself: a bug, never the user's fault, still reported like any finding
    "INTERNAL": ("schema", "validate itself failed unexpectedly (a bug); the message says where"),
    # the dataset folder and the annotations file itself
    "DATASET_UNREADABLE": ("schema", "the dataset path is missing, not a folder, or cannot be read"),
    "ANNOTATIONS_UNREADABLE": ("schema", "annotations.json is missing, not a regular file, unreadable or not JSON"),
    "ANNOTATIONS_TOO_LARGE": ("schema", "annotations.json is larger than validate.max_annotations_bytes"),
    "ANNOTATIONS_TOO_DEEP": ("schema", "annotations.json nests arrays/objects deeper than the parser allows"),
    "SCHEMA": ("schema", "a record does not match schemas/dataset.schema.json"),
    # table rules (Great Expectations suite); causes first: ids and labels, then boxes
    "DUP_CATEGORY_ID": ("tables", "two categories share an id"),
    "UNKNOWN_LABEL": ("tables", "an annotation's label is not in labels.names"),
    "DUP_IMAGE_ID": ("tables", "two images share an id"),
    "DUP_ANNOTATION_ID": ("tables", "two annotations share an id"),
    "DUP_FILE_NAME": ("tables", "two images point at the same file name"),
    "DANGLING_IMAGE_ID": ("tables", "an annotation names an image that does not exist"),
    "DANGLING_CATEGORY_ID": ("tables", "an annotation names a category that does not exist"),
    "FOREIGN_USER": ("tables", "an image belongs to another user than user.id"),
    "TOO_MANY_BOXES": ("tables", "an image has more boxes than validate.max_boxes_per_image (what training keeps)"),
    "BOX_NAN": ("tables", "a box coordinate is missing or not a finite number"),
    "BOX_NONPOSITIVE": ("tables", "a box has width or height <= 0"),
    "BOX_OUTSIDE": ("tables", "a box sticks out of its image by more than validate.box_tolerance_px"),
    "BOX_TOO_SMALL": ("tables", "a box is narrower or lower than validate.min_box_size_px"),
    # attribute containment
    "ORPHAN_ATTRIBUTE": ("attributes", "an attribute box lies inside no box of an allowed parent label"),
    # files
    "FILE_ABSOLUTE": ("files", "file_name is an absolute path"),
    "FILE_TRAVERSAL": ("files", "file_name climbs out of the dataset folder with '..'"),
    "FILE_SYMLINK_OUT": ("files", "file_name resolves (through a symlink) outside the dataset folder"),
    "FILE_NAME_TOO_LONG": ("files", "file_name (or a part of it) is longer than the file system allows"),
    "FILE_SYMLINK_LOOP": ("files", "file_name goes through a symlink loop"),
    "FILE_MISSING": ("files", "the file does not exist"),
    "FILE_NOT_REGULAR": ("files", "the path exists but is not a regular file (a folder, FIFO, device, socket)"),
    "FILE_UNREADABLE": ("files", "the file exists but cannot be read (permissions, I/O error)"),
    "FILE_SAME_AS": ("files", "two image records name the same file under different spellings"),
    "FILE_UNDECODABLE": ("files", "the file is not a decodable image"),
    "FORMAT_NOT_ALLOWED": ("files", "the image format is not in validate.allowed_formats"),
    "MODE_UNSUPPORTED": ("files", "the image mode would decode to different pixels in different steps"),
    "EXIF_ORIENTATION": ("files", "the image has an EXIF rotation that training ignores"),
    "PIXEL_BOMB": ("files", "the image declares more pixels than validate.max_pixels"),
    "FILE_TOO_LARGE": ("files", "the image file is larger than validate.max_image_bytes"),
    "SIZE_MISMATCH": ("files", "the real image size differs from the declared width/height"),
    "SHA256_MISMATCH": ("files", "the file's sha256 differs from the declared sha256"),
    "DUP_CONTENT": ("files", "two images have byte-identical content"),
    # new data and coverage
    "REGISTRY_UNREADABLE": ("lineage", "the model registry could not be read"),
    "TOO_FEW_NEW": ("lineage", "fewer new verified images than validate.min_new_verified"),
    "FEW_PER_CAMERA": ("lineage", "a camera has fewer verified images than validate.warn_min_per_camera"),
    "SINGLE_CONDITION": ("lineage", "all verified images of a camera share one condition"),
    "INCUMBENT_UNUSABLE": ("lineage", "the incumbent (evaluate.incumbent: the model the user runs now) "
                                      "is missing or not a TFLite model in Frigate's contract with a label map"),
    # every object labeled
    "AUDIT_MODEL_UNUSABLE": ("audit", "the reference model could not be loaded or run"),
    "UNLABELED_OBJECT": ("audit", "the reference model sees an object no annotation covers"),
}
CHECKS: tuple[str, ...] = ("schema", "tables", "attributes", "files", "lineage", "audit")
RULE_ORDER: dict[str, int] = {code: i for i, code in enumerate(RULES)}

MAX_MESSAGE = 240  # characters of a finding's message; the full text is kept in `detail`
MAX_LINE = 320     # a whole stderr line
_MAX_DETAIL = 20_000


def escape(text: str) -> str:
    """Control characters (newlines, ESC, NUL...) as visible escapes, so a hostile file name cannot
    forge lines or terminal codes on stderr and in report.md."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    tail = f"... (+{len(text)} chars in all)"
    return text[:max(0, limit - len(tail))] + tail


@dataclass(frozen=True)
class Finding:
    severity: Severity
    rule: str               # a code of RULES
    message: str
    image_id: int | None = None
    annotation_id: int | None = None
    file: str | None = None
    detail: str | None = None   # the full message when `message` had to be shortened
    # the finding's figures, plain JSON (per rule: UNLABELED_OBJECT label, score, bbox [x, y, w, h] px,
    # best_iou, iou_threshold; TOO_FEW_NEW new_verified, min_new_verified; FEW_PER_CAMERA camera,
    # verified, minimum; SINGLE_CONDITION camera, conditions; SIZE_MISMATCH width, height,
    # declared_width, declared_height; PIXEL_BOMB width, height, pixels, max_pixels; FILE_TOO_LARGE
    # bytes, max_bytes)
    data: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule code {self.rule!r}")
        # ids come out of pandas as numpy scalars or floats (a column with nulls); keep JSON plain
        object.__setattr__(self, "image_id", _plain_id(self.image_id))
        object.__setattr__(self, "annotation_id", _plain_id(self.annotation_id))
        message = escape(str(self.message))
        if len(message) > MAX_MESSAGE:
            if self.detail is None:
                object.__setattr__(self, "detail", shorten(message, _MAX_DETAIL))
            message = shorten(message)
        object.__setattr__(self, "message", message)

    @property
    def check(self) -> str:
        return RULES[self.rule][0]

    def where(self) -> str:
        parts = []
        if self.image_id is not None:
            parts.append(f"image {self.image_id}")
        if self.annotation_id is not None:
            parts.append(f"annotation {self.annotation_id}")
        if self.file:
            parts.append(shorten(escape(self.file), 80))
        return ", ".join(parts) or "dataset"

    def line(self) -> str:
        return shorten(f"{self.severity.upper()} {self.rule} [{self.where()}]: {self.message}", MAX_LINE)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["detail"] is None:
            del d["detail"]
        if not d["data"]:  # most findings carry no figures: report.json stays as it was for them
            del d["data"]
        return d


def _plain_id(v):
    """An id as a plain int (or str for garbage), never through a float: ids span int64."""
    if v is None or v is _NA:
        return None
    if isinstance(v, bool):
        return str(v)
    if hasattr(v, "item") and not isinstance(v, (int, str)):
        v = v.item()  # numpy scalar -> exact Python int
    if isinstance(v, float):
        # only from hand-made findings; a float id beyond 2**53 was already rounded by someone
        return None if v != v else (int(v) if v.is_integer() else str(v))
    return v if isinstance(v, (int, str)) else str(v)


@dataclass
class CheckResult:
    """What one check produced: its findings, and whether it ran at all."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None      # the reason, when the check did not run
    details: dict = field(default_factory=dict)   # small facts for report.json (counts, ...)
    evidence: dict = field(default_factory=dict)  # bulky raw results (GX), written beside it

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skipped"
        sev = {f.severity for f in self.findings}
        if "error" in sev:
            return "failed"
        if "warning" in sev:
            return "warned"
        return "passed"
