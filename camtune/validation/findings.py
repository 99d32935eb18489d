"""What the validate step reports: one `Finding` per problem, gathered into a `Report`.

Every rule has its own code (`RULES`), so a user, a test or a dashboard can tell what is wrong
without parsing messages. A finding names the image id, the annotation id and the file where
it can, so the user can go and fix that exact record.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# code -> (check it belongs to, what it means). The check names group codes in the report.
RULES: dict[str, tuple[str, str]] = {
    # the annotations file itself
    "ANNOTATIONS_UNREADABLE": ("schema", "annotations.json is missing or not valid JSON"),
    "SCHEMA": ("schema", "a record does not match schemas/dataset.schema.json"),
    # table rules (Great Expectations suite)
    "DUP_IMAGE_ID": ("tables", "two images share an id"),
    "DUP_ANNOTATION_ID": ("tables", "two annotations share an id"),
    "DUP_CATEGORY_ID": ("tables", "two categories share an id"),
    "DUP_FILE_NAME": ("tables", "two images point at the same file"),
    "DANGLING_IMAGE_ID": ("tables", "an annotation names an image that does not exist"),
    "DANGLING_CATEGORY_ID": ("tables", "an annotation names a category that does not exist"),
    "UNKNOWN_LABEL": ("tables", "an annotation's label is not in labels.names"),
    "FOREIGN_USER": ("tables", "an image belongs to another user than user.id"),
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
    "FILE_MISSING": ("files", "the file does not exist or is not a regular file"),
    "FILE_UNDECODABLE": ("files", "the file is not a decodable image"),
    "FORMAT_NOT_ALLOWED": ("files", "the image format is not in validate.allowed_formats"),
    "PIXEL_BOMB": ("files", "the image declares more pixels than validate.max_pixels"),
    "SIZE_MISMATCH": ("files", "the real image size differs from the declared width/height"),
    "SHA256_MISMATCH": ("files", "the file's sha256 differs from the declared sha256"),
    "DUP_CONTENT": ("files", "two images have byte-identical content"),
    # new data and coverage
    "REGISTRY_UNREADABLE": ("lineage", "the model registry could not be read"),
    "TOO_FEW_NEW": ("lineage", "fewer new verified images than validate.min_new_verified"),
    "FEW_PER_CAMERA": ("lineage", "a camera has fewer verified images than validate.warn_min_per_camera"),
    "SINGLE_CONDITION": ("lineage", "all verified images of a camera share one condition"),
    # every object labeled
    "AUDIT_MODEL_UNUSABLE": ("audit", "the reference model could not be loaded or run"),
    "UNLABELED_OBJECT": ("audit", "the reference model sees an object no annotation covers"),
}
CHECKS: tuple[str, ...] = ("schema", "tables", "attributes", "files", "lineage", "audit")


@dataclass(frozen=True)
class Finding:
    severity: Severity
    rule: str               # a code of RULES
    message: str
    image_id: int | None = None
    annotation_id: int | None = None
    file: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule code {self.rule!r}")
        # ids come out of pandas as numpy scalars or floats (a column with nulls); keep JSON plain
        object.__setattr__(self, "image_id", _plain_id(self.image_id))
        object.__setattr__(self, "annotation_id", _plain_id(self.annotation_id))

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
            parts.append(self.file)
        return ", ".join(parts) or "dataset"

    def line(self) -> str:
        return f"{self.severity.upper()} {self.rule} [{self.where()}]: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


def _plain_id(v):
    if v is None:
        return None
    try:
        import math

        if isinstance(v, float) and math.isnan(v):
            return None
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and v.is_integer():
            return int(v)
    except (TypeError, ValueError):
        pass
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
