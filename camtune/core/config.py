"""params.yaml -> a typed, schema-checked config.

The pydantic models below are the single source of truth: `schemas/params.schema.json` is
generated from them (`python -m camtune.core.config --write-schema`; a test fails when it drifts) and
every load is checked against that file with jsonschema *before* any model is built, so an
unknown key, a wrong type or a missing value stops with the key's dotted path.
"""
from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "params.schema.json"
DEFAULT_PARAMS = Path("params.yaml")

class WholeMatch:
    """An id pattern matched against the whole string: `.match` is `re.fullmatch`, because `$`
    also matches before a trailing newline ("front\n" passed `^...$` with re.match). `.pattern`
    stays the `^...$` text for pydantic and the JSON schema, whose `$` is the end of the text."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self._re = re.compile(pattern)

    def match(self, value: str):
        return self._re.fullmatch(value)

    fullmatch = match


# A user id becomes a path segment and an S3 key part: keep it boring.
SAFE_SEGMENT = WholeMatch(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# Where data comes from and goes (URLs, logins, buckets, workspaces), not how a model is made:
# kept out of lineage.json and the report's params table.
CONNECTION_PARAMS = ("ingest", "ingest_public", "pipeline", "publish.registry")


def model_params(params: "Params | dict") -> dict:
    """The params that shape the model, as lineage.json and the report's params table hold them:
    every section but CONNECTION_PARAMS, every string redacted (camtune.core.redaction). Also takes
    the params dict of an older lineage.json."""
    from camtune.core.redaction import redact_obj

    d = redact_obj(params if isinstance(params, dict) else params.model_dump(mode="json", by_alias=True))
    for old, new in RENAMED.items():  # an older lineage.json names sections as they were then
        parent, leaf = old.split(".")
        if isinstance(d.get(parent), dict) and leaf in d[parent] and new not in d:
            d[new] = d[parent].pop(leaf)
    for dotted in CONNECTION_PARAMS:
        *parents, last = dotted.split(".")
        node = d
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return d


class ConfigError(ValueError):
    """params.yaml is invalid; the message names the file and the dotted key (secrets redacted:
    a value shown back may be a URL with credentials, see camtune.core.redaction)."""

    def __init__(self, message: str = ""):
        from camtune.core.redaction import redact

        super().__init__(redact(message))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Pseudo-users of public datasets in the global pool (`public.<name>`; ':' is not path-safe).
PUBLIC_USER_PREFIX = "public."


class UserParams(_Section):
    id: str = Field(pattern=SAFE_SEGMENT.pattern, description="the requesting user")

    @model_validator(mode="after")
    def _not_public(self) -> "UserParams":
        if self.id.startswith(PUBLIC_USER_PREFIX):
            raise ValueError(f"user.id {self.id!r}: the prefix {PUBLIC_USER_PREFIX!r} is reserved "
                             f"for public datasets in the global pool")
        return self


class DataParams(_Section):
    user_dataset: str = Field(description="folder with annotations.json + images/")
    global_pool: str = Field(description="folder with every user's submissions")


class LabelParams(_Section):
    names: list[str] = Field(min_length=1)
    attribute_parents: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _parents_known(self) -> "LabelParams":
        if len(set(self.names)) != len(self.names):
            raise ValueError("labels.names has duplicates")
        for child, parents in self.attribute_parents.items():
            for name in [child, *parents]:
                if name not in self.names:
                    raise ValueError(f"labels.attribute_parents names unknown label {name!r}")
        return self

    @property
    def label_map(self) -> dict[str, str]:
        """Frigate's labelMap: 0-based index -> label."""
        return {str(i): n for i, n in enumerate(self.names)}


class SampleDataParams(_Section):
    # Its own output folders, not data.*: pointing data.* at a real dataset must never make the
    # sample_data stage own (or overwrite) it. By default data.* point at these.
    global_pool: str = Field("data/sample/global", description="where the synthetic global pool is written")
    users_dir: str = Field("data/sample/users", description="one synthetic dataset per demo user: <users_dir>/<user_id>")
    # One shared world for every demo user: the pool (and so the base) does not depend on who asks,
    # each user's dataset is their own (a service's economics: one base, many fine-tunes).
    users: list[Annotated[str, Field(pattern=SAFE_SEGMENT.pattern)]] = Field(
        default_factory=lambda: ["u_demo"], min_length=1,
        description="the demo's users; each gets user_images images (user_images_in_pool of them in the pool)")
    seed: int = 7
    global_users: int = Field(6, ge=1)
    cameras_per_user: int = Field(2, ge=1)
    global_images: int = Field(400, ge=1)
    user_images: int = Field(60, ge=1)
    user_images_in_pool: int = Field(20, ge=0)
    width: int = Field(640, ge=192)  # smaller scenes cannot fit every object kind
    height: int = Field(360, ge=108)
    object_scale: float = Field(
        1.0, gt=0, le=2, description="object sizes: 1 = scaled with the frame height (a 720p frame's "
                                     "objects twice a 360p frame's); 0.5 at 720p keeps 360p's pixel sizes")
    user_look: Literal["ir", "none"] = Field(
        "ir", description="the requesting user's cameras: ir = monochrome infrared (a domain the rest "
                          "of the pool lacks); none = like everybody else's")
    negative_fraction: float = Field(0.1, ge=0, le=1)
    unverified_fraction: float = Field(0.08, ge=0, le=1)
    jpeg_quality: int = Field(90, ge=10, le=100)

    @model_validator(mode="after")
    def _pool_share_fits(self) -> "SampleDataParams":
        # the user's pooled images are a subset of the user's images and part of the pool's count
        if self.user_images_in_pool > self.user_images or \
                self.user_images_in_pool * len(self.users) > self.global_images:
            raise ValueError("sample_data.user_images_in_pool must be <= user_images, and "
                             "user_images_in_pool x len(users) <= global_images")
        if len(set(self.users)) != len(self.users):
            raise ValueError("sample_data.users: duplicate user id")
        return self

    def user_dir(self, user_id: str) -> str:
        return f"{self.users_dir}/{user_id}"


class AuditParams(_Section):
    score_threshold: float = Field(0.6, gt=0, le=1)
    iou_threshold: float = Field(0.3, gt=0, le=1)
    policy: Literal["warn", "fail"] = "warn"


class ValidateParams(_Section):
    min_new_verified: int = Field(10, ge=0)
    warn_min_per_camera: int = Field(100, ge=0)
    box_tolerance_px: float = Field(1.0, ge=0)
    min_box_size_px: float = Field(2.0, ge=0)
    containment_tolerance: float = Field(0.1, ge=0, le=1)
    # only formats TensorFlow (training) decodes to the same pixels as our loader
    allowed_formats: list[Literal["JPEG", "PNG"]] = Field(default_factory=lambda: ["JPEG", "PNG"], min_length=1)
    max_pixels: int = Field(40_000_000, ge=1)
    max_image_bytes: int = Field(64 * 2**20, ge=1, description="an image file larger than this is refused "
                                                                 "by every step that reads pixels")
    max_annotations_bytes: int = Field(256 * 2**20, ge=1, description="annotations.json larger than this is refused")
    max_boxes_per_image: int = Field(100, ge=1, description="training keeps this many boxes per image "
                                                           "(Model Garden max_num_instances)")
    file_shards: int = Field(2, ge=1, description="file checks fan out in this many tasks")
    reference_model: str | None = None
    audit: AuditParams = AuditParams()


class SampleParams(_Section):
    split_unit: Literal["image", "camera", "user"] = "camera"
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    salt: str = "camtune-global-eval-v1"
    seed: int = 0
    base_train_max_images: int = Field(100_000, ge=1)
    max_user_share: float = Field(0.35, gt=0, le=1)
    min_per_label: int = Field(20, ge=0)
    upsample_rare: bool = True
    replay_ratio: float = Field(1.0, ge=0)


class AugmentationParams(_Section):
    hflip: bool = True
    scale_min: float = Field(0.8, gt=0)
    scale_max: float = Field(1.2, gt=0)


class StageTrainParams(_Section):
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    warmup_steps: int = Field(0, ge=0)
    lr_schedule: Literal["cosine", "stepwise", "constant"] = "cosine"
    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="sgd: momentum 0.9 (Model Garden's mobile recipe); adam: converges in far "
                           "fewer steps from scratch")
    checkpoint_every: int = Field(100, ge=1)


InitModules = Literal["backbone", "backbone_decoder", "all"]


class BaseTrainParams(StageTrainParams):
    source: Literal["train", "registry"] = "train"
    registry_base_id: str | None = None
    # start from a pretrained TF2 checkpoint instead of random weights (training at home)
    init_checkpoint: str | None = Field(
        None, description="a Model Garden model_dir or a checkpoint prefix to start from")
    init_modules: InitModules = Field(
        "backbone_decoder", description="what init_checkpoint gives; the rest is re-initialised")
    freeze_backbone_steps: int = Field(0, ge=0, description="backbone frozen for the first N steps")


class FinetuneParams(StageTrainParams):
    freeze_backbone: bool = False
    init_modules: InitModules = Field(
        "all", description="what the fine-tune takes from the base checkpoint")
    holdout_fraction: float = Field(0.25, ge=0, lt=1)
    init_checkpoint: str | None = Field(
        None, description="start from this checkpoint instead of the base (no base at hand)")
    freeze_backbone_steps: int = Field(0, ge=0, description="backbone frozen for the first N steps")


class LossParams(_Section):
    focal_alpha: float = Field(0.25, gt=0, lt=1, description="focal loss weight of positive anchors")
    focal_gamma: float = Field(1.5, ge=0, description="focal loss focusing: higher = scores learnt slower")
    box_weight: int = Field(50, ge=1, description="box regression loss weight")


class RegionTrainingParams(_Section):
    enabled: bool = Field(True, description="train on Frigate-style square regions instead of whole frames")
    per_object: int = Field(2, ge=1, description="jittered regions per object cluster and repeat")
    context_jitter: float = Field(0.25, ge=0, lt=1, description="size/offset jitter, fraction of the side")
    background_share: float = Field(0.3, ge=0, description="background regions per object region")
    whole_frame_share: float = Field(0.2, ge=0, le=1, description="chance an image is also used whole")
    min_visible: float = Field(0.4, gt=0, le=1, description="boxes with less of their area in the region are dropped")


class TrainingParams(_Section):
    backbone: Literal["MobileDetEdgeTPU", "MobileDetCPU"] = "MobileDetEdgeTPU"
    input_size: int = Field(320, ge=64, multiple_of=32)
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    shards: int = Field(2, ge=1)
    fpn_filters: int = Field(64, ge=8, description="FPN and head width")
    head_convs: int = Field(2, ge=1, description="separable convs per head tower")
    log_every: int = Field(10, ge=1, description="steps between progress lines / summaries")
    augmentation: AugmentationParams = AugmentationParams()
    regions: RegionTrainingParams = RegionTrainingParams()
    loss: LossParams = LossParams()
    precise_bn_batches: int = Field(
        50, ge=0, description="training batches the final BatchNorm statistics are recomputed on (0 = off)")
    seed: int | None = Field(0, ge=0, description=(
        "weight init, shuffling and augmentation seed; with it the input pipeline runs on one thread, so "
        "the same params and data give the same weights (null: unseeded, every run differs)"))


class GateParams(_Section):
    min_gain: float = 0.0
    max_global_drop: float = Field(0.02, ge=0)
    max_class_drop: float = Field(0.1, ge=0)
    class_min_boxes: int = Field(5, ge=1, description="classes with fewer global boxes are not judged")
    max_class_loss: float = Field(0.5, ge=0, le=1, description=(
        "no class on the global set may lose more than this share of the baseline's AP (class_loss[...])"))
    class_loss_min_ap: float = Field(0.05, ge=0, le=1, description=(
        "class_loss is judged only for classes whose baseline AP is at least this"))
    min_user_map50: float = Field(0.0, ge=0, le=1)
    min_global_map50: float = Field(0.0, ge=0, le=1)
    # Frigate path (camtune.metrics.frigate_path): recall at the advised min_score, false
    # detections per 100 regions; judged only when evaluate.frigate_path.enabled
    frigate_max_recall_drop: float = Field(
        0.05, ge=0, le=1, description="tuned Frigate-path recall (user and global) may be at most this below baseline")
    frigate_max_false_increase: float = Field(
        10.0, ge=0, description="tuned false detections per 100 regions may be at most this above baseline")
    min_user_frigate_recall: float = Field(
        0.5, ge=0, le=1, description="absolute floor: Frigate-path recall on the user's holdout")
    # paired bootstrap over images (camtune/metrics/bootstrap.py): every check is judged on its
    # interval at this confidence; seeded, so the same inputs give the same verdict
    confidence: float = Field(0.9, gt=0.5, lt=1, description="two-sided confidence of the gate's intervals")
    resamples: int = Field(1000, ge=100, description="bootstrap resamples per evaluation set")
    seed: int = Field(0, description="bootstrap seed")
    resolve_effect: float = Field(0.05, gt=0, le=1, description=(
        "an inconclusive check reports how many images would resolve a difference this big"))
    min_images: int = Field(10, ge=1, description=(
        "a set with fewer images is too small for a bootstrap interval: its checks are inconclusive"))
    # the incumbent (evaluate.incumbent, the model the user runs now): tuned vs incumbent on the
    # Frigate path; worse beyond these -> recorded in the registry but not promoted (docs/incumbent.md)
    incumbent_max_recall_drop: float = Field(0.1, ge=0, le=1, description=(
        "tuned Frigate-path recall may be at most this below the incumbent's (user holdout, global set, "
        "each camera); export.max_frigate_recall_drop is taken off it (the tuned side is scored in float)"))
    incumbent_max_false_increase: float = Field(10.0, ge=0, description=(
        "tuned false detections per 100 regions may be at most this above the incumbent's"))
    incumbent_camera_blocks: bool = Field(True, description=(
        "one camera measurably worse than the incumbent alone keeps the model from being promoted"))


class ThresholdParams(_Section):
    min_score_precision: float = Field(0.5, gt=0, le=1)
    threshold_precision: float = Field(0.8, gt=0, le=1)
    min_boxes: int = Field(10, ge=1, description="fewer boxes of a label: fall back")
    min_score_range: tuple[float, float] = (0.4, 0.9)   # Frigate's detector drops scores below 0.4
    threshold_range: tuple[float, float] = (0.5, 0.95)
    fallback_min_score: float = Field(0.5, gt=0, le=1)   # Frigate's defaults
    fallback_threshold: float = Field(0.7, gt=0, le=1)

    @model_validator(mode="after")
    def _ranges(self) -> "ThresholdParams":
        for name in ("min_score_range", "threshold_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"evaluate.thresholds.{name} must be [low, high] within 0..1")
        return self


class FrigatePathParams(_Section):
    enabled: bool = Field(True, description="evaluate, gate and advise on Frigate's square regions")
    motion_boxes: int = Field(2, ge=1, description="motion boxes per negative image (their regions count)")
    report_min_score: float = Field(0.5, ge=0.4, le=1, description="a fixed min_score reported beside the advised one")


class IncumbentParams(_Section):
    """The model the user runs now, compared with the tuned one (docs/incumbent.md)."""
    source: Literal["registry", "file", "none"] = Field("registry", description=(
        "registry: the user's newest promoted model; file: `model` + `labelmap`; none: no comparison"))
    model: str | None = Field(None, description="source file: a TFLite in Frigate's contract (e.g. Frigate's /cpu_model.tflite)")
    labelmap: str | None = Field(None, description="source file: its labelmap.txt (e.g. Frigate's /labelmap.txt)")

    @model_validator(mode="after")
    def _file_needs_paths(self) -> "IncumbentParams":
        if self.source == "file" and not (self.model and self.labelmap):
            raise ValueError("evaluate.incumbent.source file needs evaluate.incumbent.model and .labelmap")
        return self


class EvaluateParams(_Section):
    iou_type: Literal["bbox"] = "bbox"
    shards: int = Field(1, ge=1, description="prediction shards per model and set (fan-out unit)")
    batch_size: int = Field(8, ge=1)
    gate: GateParams = GateParams()
    thresholds: ThresholdParams = ThresholdParams()
    frigate_path: FrigatePathParams = FrigatePathParams()
    incumbent: IncumbentParams = IncumbentParams()


class EdgeTPUParams(_Section):
    required: bool = False
    compiler_path: str | None = None
    timeout_s: int = Field(600, ge=1)


class ExportParams(_Section):
    max_detections: int = Field(25, ge=1)
    representative_images: int = Field(100, ge=1)
    max_map_drop: float = Field(0.01, ge=0)
    max_frigate_recall_drop: float = Field(
        0.05, ge=0, le=1, description="int8 vs float Frigate-path recall (min_score 0.5) may drop at most this")
    edgetpu: EdgeTPUParams = EdgeTPUParams()
    targets: list[Literal["tflite", "edgetpu", "onnx"]] = Field(
        ["tflite", "edgetpu", "onnx"],
        description="what to export: tflite (cpu, always), edgetpu (when edgetpu_compiler exists), onnx "
                    "(Frigate's onnx + openvino detectors, docs/detectors.md); one that cannot be built "
                    "says why in export.json and does not block the others")
    onnx_model_type: Literal["yolonas", "yolo-generic"] = Field(
        "yolonas", description="the ONNX model's Frigate model type: yolonas (NMS in the graph, the "
                               "tflite's) or yolo-generic (Frigate's NMS); docs/detectors.md")

    @model_validator(mode="after")
    def _targets(self) -> "ExportParams":
        if "tflite" not in self.targets:
            raise ValueError("export.targets must include tflite (evaluate, publish and the Edge TPU "
                             "compile read model.tflite)")
        if self.edgetpu.required and "edgetpu" not in self.targets:
            raise ValueError("export.edgetpu.required is true but export.targets leaves out edgetpu")
        return self


class S3Params(_Section):
    # Credentials are never params: boto3's usual chain (env, ~/.aws, instance role) supplies them.
    bucket: str | None = None
    prefix: str = Field("camtune", description="key prefix inside the bucket ('' for the bucket root)")
    endpoint_url: str | None = Field(None, description="S3-compatible store (MinIO, Ceph, ...); null = AWS")
    region: str | None = None
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(5, ge=1, le=20, description="botocore attempts per request (503s, throttling)")
    multipart_threshold_mb: int = Field(64, ge=5, description="uploads above this go multipart")

    @model_validator(mode="after")
    def _no_credentials_in_url(self) -> "S3Params":
        from camtune.core.redaction import userinfo_problem

        problem = userinfo_problem(self.endpoint_url, "publish.registry.s3.endpoint_url")
        if problem:
            raise ValueError(problem)
        return self


class RegistryParams(_Section):
    kind: Literal["local", "s3"] = "local"
    root: str = Field("registry", description="local folder (kind: local)")
    s3: S3Params = S3Params()

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> "RegistryParams":
        if self.kind == "s3" and not self.s3.bucket:
            raise ValueError("publish.registry.s3.bucket is required when kind is s3")
        return self


class PublishParams(_Section):
    model_name: str | None = None
    allow_inconclusive: bool = Field(False, description=(
        "publish a model the gate found inconclusive (never not_blessed); flagged in the registry"))
    registry: RegistryParams = RegistryParams()


class ReportParams(_Section):
    """The HTML run report (artifacts/report/index.html)."""
    images_per_camera: int = Field(4, ge=0, description="holdout images shown per user camera")
    global_images: int = Field(6, ge=0, description="global-set images shown (where base and tuned differ most)")
    findings_shown: int = Field(40, ge=0, description="validation findings drawn as thumbnails (errors first)")
    panel_width: int = Field(400, ge=64, le=1600, description="pixels per base/tuned panel")
    jpeg_quality: int = Field(80, ge=30, le=95)
    match_iou: float = Field(0.5, gt=0, le=1, description="IoU at which a detection matches a ground-truth box")
    conditions: list[str] = Field(
        default_factory=lambda: ["cloudy", "sunny", "dawn", "dusk", "night"],
        description="conditions every camera should have images of (Frigate+ advice)")


class IngestPublicParams(_Section):
    """`camtune ingest_public`: a public COCO-format dataset -> a global pool of ours."""
    name: str = Field("coco2017", pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$",
                      description="source name; its pseudo-user is 'public.<name>'")
    annotations: str | None = Field(None, description="the source's COCO json (instances_*.json)")
    images: str | None = Field(None, description="folder the source's file_name values are relative to")
    out: str = Field("data/public", description="pools are written to <out>/<name>")
    map: dict[str, str] = Field(default_factory=dict, description="source category -> our label")
    tracked: list[str] = Field(
        default_factory=list,
        description="source categories that are objects we detect: an image with one unmapped is dropped")
    max_images: int = Field(20000, ge=1)
    negative_share: float = Field(0.1, ge=0, lt=1, description="at most this share of images without boxes")
    salt: str = "camtune-public-v1"
    link: Literal["hardlink", "copy"] = Field("hardlink", description="hardlink falls back to copy across devices")


_REMOTE_URL = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_./-]*)?$"


class RemoteParams(_Section):
    # Credentials are never params: the AWS chain (env, ~/.aws, instance role) supplies them.
    url: str | None = Field(None, pattern=_REMOTE_URL,
                            description="s3://bucket/prefix shared by every worker: DVC remote (stage "
                                        "outputs), shared-stage records, run records; null = one machine")
    endpoint_url: str | None = Field(None, description="S3-compatible store (MinIO, Ceph, ...); null = AWS")
    region: str | None = None

    @model_validator(mode="after")
    def _whole_url(self) -> "RemoteParams":
        # `$` in the schema pattern also matches before a trailing newline: match the whole value
        if self.url is not None and not re.fullmatch(_REMOTE_URL, self.url):
            raise ValueError(f"pipeline.remote.url {self.url!r} is not s3://bucket[/prefix]")
        return self

    def bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = (self.url or "").removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")


class PipelineParams(_Section):
    workspaces: str = Field("workspaces", description="per-user working copies (git worktrees)")
    remote: RemoteParams = RemoteParams()
    shared_lock_timeout_s: float = Field(
        7200, ge=0, description="how long a run waits while another worker builds the same shared stage (the base)")
    lease_s: float = Field(
        60, ge=60, description="Prefect lock leases (Prefect's minimum: 60 s): how long a dead worker's locks outlive it")
    user_dataset_template: str | None = Field(
        None, description="e.g. 'data/users/{user_id}'; null keeps data.user_dataset")
    on_busy: Literal["wait", "skip"] = "skip"
    lock_timeout_s: float = Field(3600, ge=0)
    max_concurrent_runs: int = Field(2, ge=1)
    record_runs: bool = True
    task_runner: Literal["threads", "dask"] = "threads"
    dask_workers: int = Field(2, ge=1)


class FrigateIngestParams(_Section):
    # The password is never a param: CAMTUNE_FRIGATE_PASSWORD (or a token in CAMTUNE_FRIGATE_TOKEN).
    url: str | None = Field(None, description="Frigate base URL, e.g. http://frigate:5000 (8971 needs login); "
                                              "no credentials in it (refused)")
    username: str | None = Field(None, description="login for the authenticated port (POST /api/login)")

    @model_validator(mode="after")
    def _no_credentials_in_url(self) -> "FrigateIngestParams":
        from camtune.core.redaction import userinfo_problem

        problem = userinfo_problem(self.url, "ingest.frigate.url")
        if problem:
            raise ValueError(problem)
        return self
    cameras: list[str] = Field(default_factory=list, description="empty = all cameras")
    labels: list[str] = Field(default_factory=list, description="Frigate labels to ask for; empty = all")
    after: str | None = Field(None, description="only events that started after this date/time (ISO 8601)")
    label_map: dict[str, str | None] = Field(
        default_factory=dict, description="Frigate label -> ours (case-insensitive); null or absent = dropped")
    page_size: int = Field(100, ge=1, le=10000, description="events per GET /api/events page")
    batch_size: int = Field(25, ge=1, description="events written per atomic dataset update")
    workers: int = Field(4, ge=1, le=32, description="snapshots downloaded and re-encoded at once")
    store_format: Literal["jpeg", "png"] = Field("jpeg", description="how snapshots are stored (TF cannot read WebP)")
    jpeg_quality: int = Field(95, ge=50, le=100)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(4, ge=0, le=20, description="retries per request (5xx, timeouts, resets)")
    backoff_s: float = Field(0.5, ge=0, description="exponential backoff factor between retries")
    request_deadline_s: float = Field(120.0, gt=0, description="a whole answer (body included) within this, "
                                                               "however slowly the server sends it")
    max_response_bytes: int = Field(32 * 2**20, ge=1, description="an answer larger than this is refused "
                                                                  "(a snapshot: that event's finding)")
    max_retry_after_s: float = Field(30.0, ge=0, description="a server's Retry-After is honoured up to this")


class SuggestIngestParams(_Section):
    model: str | None = Field(None, description="a Frigate-contract TFLite file; null = the user's newest published model")
    score_floor: float = Field(0.4, gt=0, le=1, description="detections below are not suggested")
    merge_iou: float = Field(0.5, gt=0, le=1, description="a detection overlapping a box of its label this much is the same object")
    default_threshold: float = Field(0.7, gt=0, le=1, description="the label threshold when the model advises none")
    margin_weight: float = Field(1.0, ge=0)
    disagreement_weight: float = Field(1.0, ge=0)
    scarcity_weight: float = Field(0.5, ge=0)
    scarcity_scale: float = Field(20.0, gt=0, description="verified images per camera at which scarcity halves")


class ToolsIngestParams(_Section):
    export_dir: str = Field("exports", description="where export-ls / export-cvat write")
    ls_image_url_prefix: str = Field("/data/local-files/?d=", description="Label Studio local-files URL prefix")
    ls_document_root: str = Field(".", description="LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, image paths are relative to it")
    max_images: int | None = Field(None, ge=1, description="export at most this many (highest priority first)")


class IngestParams(_Section):
    out_dir: str = Field("artifacts/ingest", description="reports and the ranked review list")
    frigate: FrigateIngestParams = FrigateIngestParams()
    suggest: SuggestIngestParams = SuggestIngestParams()
    tools: ToolsIngestParams = ToolsIngestParams()


# one section per step, named as the step (its DVC stage, package, flow and command); `validate`
# shadows pydantic's deprecated BaseModel.validate classmethod, which camtune never calls
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "validate"', category=UserWarning)

    class Params(_Section):
        user: UserParams
        data: DataParams
        labels: LabelParams
        sample_data: SampleDataParams
        validate: ValidateParams
        sample: SampleParams
        training: TrainingParams = Field(description="what train_base and finetune share: the model and its input")
        train_base: BaseTrainParams
        finetune: FinetuneParams
        evaluate: EvaluateParams
        export: ExportParams
        publish: PublishParams
        pipeline: PipelineParams = PipelineParams()
        report: ReportParams = ReportParams()
        ingest: IngestParams = IngestParams()
        ingest_public: IngestPublicParams = IngestPublicParams()

        model_config = ConfigDict(extra="forbid", frozen=True)


def json_schema() -> dict:
    schema = Params.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "camtune params.yaml"
    return schema


def _dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def check(raw: object, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping against the committed schema, then type it."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for e in errors:
            where = _dotted(e.absolute_path)
            if e.validator == "additionalProperties":
                unknown = sorted(set(e.instance) - set(e.schema.get("properties", {})))
                for key in unknown:
                    key_path = f"{where}.{key}" if e.absolute_path else key
                    lines.append(f"{key_path}: unknown key")
            elif e.validator == "required":
                missing = [k for k in e.validator_value if k not in e.instance]
                for key in missing:
                    key_path = f"{where}.{key}" if e.absolute_path else key
                    lines.append(f"{key_path}: missing value")
            else:
                lines.append(f"{where}: {e.message}")
        raise ConfigError(f"{source}: invalid params:\n  " + "\n  ".join(lines))
    try:
        return Params.model_validate(raw)
    except Exception as exc:  # cross-field rules (pydantic validators) that JSON Schema cannot say
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            lines = [f"{_dotted(e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(f"{source}: invalid params:\n  " + "\n  ".join(lines)) from None
        raise


def _field_annotation(dotted: str):
    """The type annotation of a dotted params key, or None when the key is unknown."""
    model: object = Params
    annotation = None
    for part in dotted.split("."):
        fields = getattr(model, "model_fields", None)
        if not fields:
            return None
        by_alias = {(f.alias or name): f for name, f in fields.items()}
        field = by_alias.get(part) or fields.get(part)
        if field is None:
            return None
        annotation = model = field.annotation
    return annotation


def parse_override(dotted: str, text: str):
    """A `--set key=value` value: taken literally (as the string given) for string-typed keys,
    so a path keeps every character (YAML would read `/data/a #1` as `/data/a`, `a: b` as a
    mapping); otherwise parsed as YAML, so numbers, booleans, null and lists keep their type.
    A `str | None` key reads `null` or `~` as null."""
    annotation = _field_annotation(dotted)
    if annotation is str:
        return text
    if annotation == (str | None):
        return None if text in ("null", "~", "Null", "NULL") else text
    return yaml.safe_load(text)


# train_model's `overrides` come from any client of the Prefect API (a deployment's parameters):
# none may name a program to run, where data comes from or goes (URLs, buckets, workspaces), or a
# file or folder outside the run's workspace. Subtrees refused whole; path keys only relative
# and inside the workspace.
RUN_OVERRIDE_REFUSED = ("export.edgetpu.compiler_path", "ingest", "pipeline", "publish.registry")
RUN_OVERRIDE_PATHS = ("data.user_dataset", "data.global_pool", "sample_data.global_pool",
                      "sample_data.users_dir", "validate.reference_model",
                      "train_base.init_checkpoint", "finetune.init_checkpoint")


def _flat(key: str, value) -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(f"{key}.{k}", v)]
    return [(key, value)]


def _inside_relative(value) -> bool:
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(value, str) or not value or "\x00" in value:
        return False
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive \
            or value.startswith("~"):
        return False
    return ".." not in PurePosixPath(value.replace("\\", "/")).parts


def check_run_overrides(overrides: dict | None, params_path: str | Path = "params.yaml") -> None:
    """Refuse (StepFailed naming the key) an override a deployment's caller must not set, and a
    params_path outside the repo (absolute or with '..'). See RUN_OVERRIDE_REFUSED / _PATHS."""
    from camtune.core.errors import StepFailed

    if not _inside_relative(str(params_path)):
        raise StepFailed(f"params_path {str(params_path)!r}: must be a relative path inside the repository "
                         "(no absolute path, no '..')")
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        raise StepFailed(f"overrides: expected a mapping of dotted keys, got {type(overrides).__name__}")
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise StepFailed(f"override key {key!r}: not a dotted key")
        for dotted, leaf in _flat(key, value):
            # a key is compared in its canonical form (an old name as its new one)
            norm = _renamed(".".join(p.strip() for p in dotted.split(".")))
            for refused in RUN_OVERRIDE_REFUSED:
                if norm == refused or norm.startswith(refused + ".") or refused.startswith(norm + "."):
                    raise StepFailed(f"override {dotted!r}: {refused} cannot be set through a run's overrides "
                                     "(it names a program to run or where data comes from or goes); set it in "
                                     "params.yaml of the deployment's repository")
            for path_key in RUN_OVERRIDE_PATHS:
                if norm == path_key and leaf is not None and not _inside_relative(leaf):
                    raise StepFailed(f"override {dotted!r}={leaf!r}: a path set through a run's overrides must be "
                                     "relative and inside the run's workspace (no absolute path, no '..')")
                if path_key.startswith(norm + "."):  # a whole section replaced: its path keys must be set
                    raise StepFailed(f"override {dotted!r}: set its keys one by one ({path_key} is a path)")


# sections renamed so that each step's section carries the step's name (old -> new); an old key
# still loads, with one deprecation line on stderr naming the new one
RENAMED = {"training.base": "train_base", "training.finetune": "finetune", "ingest.public": "ingest_public"}
_told: set[str] = set()


def _renamed(dotted: str) -> str:
    for old, new in RENAMED.items():
        if dotted == old or dotted.startswith(old + "."):
            return new + dotted[len(old):]
    return dotted


def _deprecated(message: str) -> None:
    if message not in _told:
        _told.add(message)
        print(f"camtune: deprecated: {message} (docs/dataset.md#params)", file=sys.stderr)


def _migrate(raw: dict, source: str) -> None:
    """Move renamed sections of an older params.yaml to their new place (RENAMED)."""
    for old, new in RENAMED.items():
        parent, leaf = old.split(".")
        node = raw.get(parent)
        if isinstance(node, dict) and leaf in node:
            if new in raw:
                raise ConfigError(f"{source}: both {old} (the old name) and {new} are set; keep {new}")
            raw[new] = node.pop(leaf)
            _deprecated(f"{source}: the section {old} is now {new}")


def load(path: str | Path = DEFAULT_PARAMS, overrides: dict | None = None) -> Params:
    """Read params.yaml, apply dotted-key overrides ({"user.id": "u2"}), check and type it."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    _migrate(raw, str(path))
    for dotted, value in (overrides or {}).items():
        renamed = _renamed(dotted)
        if renamed != dotted:
            _deprecated(f"--set {dotted}: the key is now {renamed}")
            dotted = renamed
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return check(raw, str(path))


def parse_overrides(pairs: list[str]) -> dict:
    """`["user.id=u2", "train_base.steps=10"]` (the CLIs' `--set`) -> dotted-key overrides for
    `load`; string-typed keys (paths) keep the text literally, other values are YAML, so numbers,
    booleans and null keep their type (`parse_override`)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = parse_override(key, value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML: {exc}") from None
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--write-schema"]:
        SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {SCHEMA_PATH}")
        return 0
    try:
        load(argv[0] if argv else DEFAULT_PARAMS)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("params OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
