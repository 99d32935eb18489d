"""Publishing into the registry, on a local folder and on a real S3 HTTP endpoint (moto server)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from camtune.core import config
from camtune.steps.publish import release as publishing
from camtune.core.config import RegistryParams, S3Params
from camtune.core.errors import StepFailed
from camtune.contracts.registry import ChecksumMismatch, RegistryError, open_registry
from tests.support.s3 import FaultProxy, make_publish_inputs, s3_client

ROOT = config.ROOT


def _params(registry: RegistryParams, user: str = "u_a", **extra) -> config.Params:
    over = {"user.id": user, "publish.registry": registry.model_dump(), **extra}
    return config.load(ROOT / "params.yaml", over)


@pytest.fixture(params=["local", "s3"])
def registry_params(request, tmp_path) -> RegistryParams:
    if request.param == "local":
        return RegistryParams(kind="local", root=str(tmp_path / "registry"))
    endpoint = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return RegistryParams(kind="s3", s3=S3Params(bucket=bucket, prefix="reg", endpoint_url=endpoint, max_attempts=3))


def _publish(params: config.Params, inputs: dict, tmp: Path) -> dict:
    staging = tmp / f"staging-{len(list(tmp.glob('staging-*')))}"
    staging.mkdir()
    plan = publishing.prepare(params, staging, **inputs, lock_path=tmp / "no-dvc.lock")
    return publishing.upload(plan, open_registry(params.publish.registry, user_id=params.user.id))


def test_publish_read_back_and_idempotent(registry_params, tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    params = _params(registry_params)
    reg = open_registry(registry_params)
    assert reg.latest_model("u_a") is None and reg.latest_lineage("u_a") is None

    receipt = _publish(params, inputs, tmp_path)
    assert receipt["created"] is True
    mid = receipt["model_id"]
    assert set(receipt["files"]) == {"model.tflite", "model_edgetpu.tflite", "labelmap.txt", "metadata.json",
                                     "filters.yml", "report.md", "lineage.json"}
    latest = reg.latest_model("u_a")
    assert latest["model_id"] == mid and latest["blessed"] is True
    assert reg.read_file("u_a", mid, "model.tflite") == (inputs["export_dir"] / "model.tflite").read_bytes()

    meta = reg.read_json("u_a", mid, "metadata.json")
    assert meta["id"] == mid and meta["type"] == "ssd" and meta["isBaseModel"] is False
    assert (meta["width"], meta["height"], meta["inputShape"], meta["pixelFormat"], meta["inputDataType"]) == \
        (320, 320, "nhwc", "rgb", "int")
    assert meta["labelMap"]["0"] == "person" and meta["labelMap"]["10"] == "deer"
    assert meta["supportedDetectors"] == ["cpu"]
    assert meta["attributes"] == {"car": ["amazon", "fedex", "license_plate", "ups"], "person": ["face"]}
    assert meta["variants"]["edgetpu"] == {"id": f"{mid}-edgetpu", "file": "model_edgetpu.tflite",
                                           "supportedDetectors": ["edgetpu"]}
    assert meta["sha256"]["model.tflite"] == receipt["files"]["model.tflite"]["sha256"]
    assert meta["gate"]["blessed"] is True and meta["baseModel"].startswith("base-")

    lineage = reg.latest_lineage("u_a")
    assert lineage["image_ids"] == list(range(1, 21))
    assert lineage["base_id"] == meta["baseModel"] and lineage["params"]["user"]["id"] == "u_a"
    assert "deps" in lineage["dvc"] and "rev" in lineage["git"]

    # the base went to base/<base_id>/ with only the newest checkpoint, and pulls back verified
    base_id = meta["baseModel"]
    assert reg.base_ids() == [base_id]
    pulled = reg.pull_base(base_id, tmp_path / "pulled")
    assert sorted(p.name for p in pulled.iterdir()) == sorted(
        ["params.yaml", "labels.json", "checkpoint", "ckpt-200.index", "ckpt-200.data-00000-of-00001",
         "registry_base.json"])
    assert (pulled / "ckpt-200.index").read_bytes() == b"index200"

    # publishing the same model again changes nothing
    again = _publish(params, inputs, tmp_path)
    assert again["created"] is False and again["model_id"] == mid
    assert [m["model_id"] for m in reg.models("u_a")] == [mid]
    assert again["base"]["created"] is False

    # a different model is a second entry, newest last
    inputs2 = make_publish_inputs(tmp_path / "ws2", tiny_tflite, variant=b"v2", user_image_ids=range(1, 31))
    second = _publish(params, inputs2, tmp_path)
    assert second["created"] and [m["model_id"] for m in reg.models("u_a")] == [mid, second["model_id"]]
    assert reg.latest_lineage("u_a")["image_ids"] == list(range(1, 31))


def test_unblessed_is_refused_with_failed_checks(registry_params, tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, blessed=False)
    with pytest.raises(StepFailed, match=r"not blessed(.|\n)*user_gain(.|\n)*estimate -0.1"):
        _publish(_params(registry_params), inputs, tmp_path)
    assert open_registry(registry_params).models("u_a") == []


def test_inconclusive_is_refused_unless_allowed_then_flagged(tiny_tflite, tmp_path):
    reg_params = RegistryParams(kind="local", root=str(tmp_path / "registry"))
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, verdict="inconclusive")
    with pytest.raises(StepFailed, match=r"inconclusive(.|\n)*allow_inconclusive(.|\n)*user_gain"
                                         r"(.|\n)*about 40 verified images"):
        _publish(_params(reg_params), inputs, tmp_path)
    reg = open_registry(reg_params)
    assert reg.models("u_a") == []
    receipt = _publish(_params(reg_params, **{"publish.allow_inconclusive": True}), inputs, tmp_path)
    entry = reg.models("u_a")[0]
    assert entry["blessed"] is False and entry["verdict"] == "inconclusive"
    meta = reg.read_json("u_a", receipt["model_id"], "metadata.json")
    assert meta["published_unblessed"]["verdict"] == "inconclusive"
    assert meta["published_unblessed"]["warning"].startswith("NOT BLESSED")


def test_not_blessed_is_refused_even_when_inconclusive_is_allowed(tiny_tflite, tmp_path):
    reg_params = RegistryParams(kind="local", root=str(tmp_path / "registry"))
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, blessed=False)
    with pytest.raises(StepFailed, match="not blessed"):
        _publish(_params(reg_params, **{"publish.allow_inconclusive": True}), inputs, tmp_path)


def test_trained_on_must_be_this_users(tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, user_id="u_other")
    with pytest.raises(StepFailed, match="trained_on.json: trained for user 'u_other', not 'u_a'"):
        _publish(_params(RegistryParams(root=str(tmp_path / "reg"))), inputs, tmp_path)


def test_labelmap_must_match_params(tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    (inputs["export_dir"] / "labelmap.txt").write_text("0 person\n1 car\n")
    with pytest.raises(StepFailed, match="labelmap.txt: label map"):
        _publish(_params(RegistryParams(root=str(tmp_path / "reg"))), inputs, tmp_path)


def test_tenancy(registry_params, tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    _publish(_params(registry_params, user="u_a"), inputs, tmp_path)
    as_b = open_registry(registry_params, user_id="u_b")
    assert as_b.latest_model("u_b") is None
    for call in (lambda: as_b.latest_model("u_a"), lambda: as_b.latest_lineage("u_a"),
                 lambda: as_b.models("u_a")):
        with pytest.raises(RegistryError, match="opened for user 'u_b'"):
            call()
    unscoped = open_registry(registry_params)
    for bad in ("../u_a", "u_a/x", "", ".hidden", "a" * 65, "u a"):
        with pytest.raises(RegistryError, match="not a safe path segment"):
            unscoped.latest_model(bad)
    with pytest.raises(RegistryError, match="not a safe path segment"):
        open_registry(registry_params, user_id="../etc")
    # the publish for u_b writes only under users/u_b/ (and the shared base/)
    _publish(_params(registry_params, user="u_b"), make_publish_inputs(tmp_path / "wb", tiny_tflite, user_id="u_b"),
             tmp_path)
    assert unscoped.latest_model("u_b")["model_id"] != unscoped.latest_model("u_a")["model_id"]
    if registry_params.kind == "local":
        tops = {p.relative_to(registry_params.root).parts[:2] for p in Path(registry_params.root).rglob("*") if p.is_file()}
        assert {t[0] for t in tops} == {"users", "base"}
        assert {t[1] for t in tops if t[0] == "users"} == {"u_a", "u_b"}


def test_install_to_frigate_layout(registry_params, tiny_tflite, tmp_path, umask_022):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    receipt = _publish(_params(registry_params), inputs, tmp_path)
    mid = receipt["model_id"]
    reg = open_registry(registry_params, user_id="u_a")
    cache = tmp_path / "model_cache"
    out = publishing.install(reg, "u_a", cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([mid, f"{mid}.json"])
    info = json.loads((cache / f"{mid}.json").read_text())
    assert info["id"] == mid and info["supportedDetectors"] == ["cpu"] and info["labelMap"]["2"] == "car"
    assert (cache / mid).read_bytes() == (inputs["export_dir"] / "model.tflite").read_bytes()
    assert out["frigate_path"] == f"plus://{mid}"
    # readable by a Frigate container running as another user: the umask's mode, not mkstemp's 0600
    assert {oct((cache / n).stat().st_mode & 0o777) for n in (mid, f"{mid}.json")} == {"0o644"}

    # Frigate's CPU detector loads it: ai_edge_litert's Interpreter on the extension-less file
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(cache / mid))
    interp.allocate_tensors()
    assert list(interp.get_input_details()[0]["shape"]) == [1, info["height"], info["width"], 3]

    tpu = publishing.install(reg, "u_a", cache, model_id=mid, detector="edgetpu")
    assert tpu["frigate_id"] == f"{mid}-edgetpu"
    assert json.loads((cache / f"{mid}-edgetpu.json").read_text())["supportedDetectors"] == ["edgetpu"]

    # a corrupted registry file is refused and nothing lands under its final name
    upload = reg.model("u_a", mid)["upload_id"]   # each publish writes under its own upload id
    if registry_params.kind == "local":
        Path(registry_params.root, "users", "u_a", mid, upload, "model.tflite").write_bytes(b"tampered")
    else:
        s3_client(registry_params.s3.endpoint_url).put_object(
            Bucket=registry_params.s3.bucket, Key=f"reg/users/u_a/{mid}/{upload}/model.tflite", Body=b"tampered")
    fresh = tmp_path / "fresh_cache"
    with pytest.raises(ChecksumMismatch, match="does not match the index"):
        publishing.install(reg, "u_a", fresh)
    assert not (fresh / mid).exists() and not (fresh / f"{mid}.json").exists()
    with pytest.raises(RegistryError, match="no published model 'nope'"):
        publishing.install(reg, "u_a", fresh, model_id="nope")


def test_concurrent_publishes_keep_both_entries(registry_params, tiny_tflite, tmp_path):
    params = _params(registry_params)
    plans = []
    for i in range(4):
        staging = tmp_path / f"stage{i}"
        staging.mkdir()
        inputs = make_publish_inputs(tmp_path / f"ws{i}", tiny_tflite, variant=b"m%d" % i)
        plans.append(publishing.prepare(params, staging, **inputs, lock_path=tmp_path / "none"))
    barrier = threading.Barrier(len(plans))
    results, errors = [], []

    def run(plan):
        reg = open_registry(registry_params, user_id="u_a")
        try:
            barrier.wait()
            results.append(publishing.upload(plan, reg))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = {m["model_id"] for m in open_registry(registry_params).models("u_a")}
    assert ids == {p.model_id for p in plans}


def test_s3_conflicting_index_write_is_retried(s3_server, s3_bucket):
    """Deterministic version of the race: writer 1 reads the index, writer 2 commits, writer 1's
    conditional PUT then fails (412) and it must re-read instead of overwriting."""
    rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=s3_server, prefix=""))
    reg = open_registry(rp)
    reg.commit("u_a", {"model_id": "m0", "files": {}})
    store = reg.store
    real_get = store._get
    interleaved = []

    def get_then_interleave(key):
        got = real_get(key)
        if not interleaved:
            interleaved.append(True)
            open_registry(rp).commit("u_a", {"model_id": "m_other", "files": {}})
        return got

    store._get = get_then_interleave
    reg.commit("u_a", {"model_id": "m1", "files": {}})
    assert [m["model_id"] for m in open_registry(rp).models("u_a")] == ["m0", "m_other", "m1"]


def test_s3_503s_are_retried_by_botocore(s3_server, s3_bucket, tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    # botocore's standard mode backs off (random, up to 2**n s) between attempts: keep n small
    with FaultProxy(s3_server, fail_first=2) as proxy:
        rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=proxy.url, max_attempts=3))
        receipt = _publish(_params(rp), inputs, tmp_path)
        assert proxy.failed == 2 and proxy.forwarded > 0
    direct = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=s3_server))
    assert open_registry(direct).latest_model("u_a")["model_id"] == receipt["model_id"]

    # more 503s than attempts: the publish fails (no half entry in the index)
    inputs2 = make_publish_inputs(tmp_path / "ws2", tiny_tflite, variant=b"x")
    with FaultProxy(s3_server, fail_first=100, methods=("PUT",)) as proxy:
        rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=proxy.url, max_attempts=2))
        with pytest.raises(Exception, match="SlowDown|503|reduce your request rate"):
            _publish(_params(rp), inputs2, tmp_path)
    assert [m["model_id"] for m in open_registry(direct).models("u_a")] == [receipt["model_id"]]


_KILL_SCRIPT = """
import os, sys
from pathlib import Path
from camtune.core import config
from camtune.steps.publish import release as publishing
from camtune.contracts import registry
from camtune.core.config import RegistryParams
plan_args = dict(export_dir=Path(sys.argv[2]) / "export", evaluate_dir=Path(sys.argv[2]) / "evaluate",
                 finetune_dir=Path(sys.argv[2]) / "finetune", train_base_dir=Path(sys.argv[2]) / "train_base",
                 sample_dir=Path(sys.argv[2]) / "sample")
rp = RegistryParams.model_validate_json(sys.argv[1])
params = config.load(sys.argv[4], {"user.id": "u_a", "publish.registry": rp.model_dump()})
plan = publishing.prepare(params, Path(sys.argv[3]), lock_path=Path(sys.argv[3]) / "none", **plan_args)
real = registry.Registry.put_model_file
count = 0
def dying(self, *a, **k):
    global count
    count += 1
    if count == 3:          # killed between files: no cleanup, no finally, no index
        os._exit(9)
    return real(self, *a, **k)
registry.Registry.put_model_file = dying
publishing.upload(plan, registry.open_registry(rp, user_id="u_a"))
"""


def test_publish_killed_between_files_leaves_no_entry(registry_params, tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    staging = tmp_path / "staging-kill"
    staging.mkdir()
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, registry_params.model_dump_json(),
                           str(tmp_path / "ws" / "artifacts"), str(staging), str(ROOT / "params.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    reg = open_registry(registry_params)
    assert reg.models("u_a") == [] and reg.latest_lineage("u_a") is None
    # the two files it did write are there, but no reader trusts them
    if registry_params.kind == "local":
        assert any(Path(registry_params.root, "users", "u_a").rglob("model.tflite"))
    receipt = _publish(_params(registry_params), inputs, tmp_path)  # a re-run completes
    assert receipt["created"] and reg.latest_model("u_a")["model_id"] == receipt["model_id"]
    assert reg.read_file("u_a", receipt["model_id"], "lineage.json")


def test_validate_new_verified_rule_reads_published_lineage(s3_server, s3_bucket, tiny_tflite, tmp_path):
    """End to end with the validate step: publish (trained on images 1..20) to S3, then the
    "new verified images" rule counts only verified images not in that lineage."""
    import pandas as pd

    from camtune.core.config import ValidateParams
    from camtune.steps.validate.lineage import check_lineage, previous_lineage

    rp = RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=s3_server))
    rules = ValidateParams(min_new_verified=10, warn_min_per_camera=0)

    def images(new: int) -> pd.DataFrame:
        ids = list(range(1, 21 + new)) + [500]  # 500: new but unverified, never counts
        return pd.DataFrame({"id": ids, "user_id": "u_a", "verified": [i != 500 for i in ids],
                             "camera": "front", "condition": ["day" if i % 2 else "night" for i in ids]})

    first = previous_lineage(rp, "u_a")
    assert first is None  # no model yet: every verified image counts
    _publish(_params(rp), make_publish_inputs(tmp_path / "ws", tiny_tflite, user_image_ids=range(1, 21)), tmp_path)
    lineage = previous_lineage(rp, "u_a")
    assert lineage["image_ids"] == list(range(1, 21))

    findings, counts = check_lineage(images(9), "u_a", rules, lineage)
    assert counts["new_verified"] == 9 and any(f.rule == "TOO_FEW_NEW" for f in findings)
    findings, counts = check_lineage(images(10), "u_a", rules, lineage)
    assert counts["new_verified"] == 10 and not any(f.rule == "TOO_FEW_NEW" for f in findings)


def test_onnx_variant_published_and_installed_for_onnx_and_openvino(tiny_tflite, tiny_onnx, tmp_path, umask_022):
    registry_params = RegistryParams(kind="local", root=str(tmp_path / "registry"))
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, onnx=tiny_onnx)
    receipt = _publish(_params(registry_params), inputs, tmp_path)
    mid = receipt["model_id"]
    reg = open_registry(registry_params, user_id="u_a")
    meta = reg.read_json("u_a", mid, "metadata.json")
    assert meta["variants"]["onnx"] == {
        "id": f"{mid}-onnx", "file": "model.onnx", "supportedDetectors": ["onnx", "openvino"],
        "frigate": {"type": "yolonas", "width": 320, "height": 320, "inputShape": "nhwc", "pixelFormat": "rgb",
                    "inputDataType": "int"}}
    assert meta["type"] == "ssd"  # the top level stays the cpu variant
    assert reg.models("u_a")[0]["detectors"] == ["cpu", "edgetpu", "onnx", "openvino"]
    # the receipt: which file for which detector, with Frigate's config lines
    fr = receipt["frigate"]
    assert {d: (v["model_id"], v["file"]) for d, v in fr.items()} == {
        "cpu": (mid, "model.tflite"), "edgetpu": (f"{mid}-edgetpu", "model_edgetpu.tflite"),
        "onnx": (f"{mid}-onnx", "model.onnx"), "openvino": (f"{mid}-onnx", "model.onnx")}
    assert fr["openvino"]["config"] == (f"detectors:\n  ov:\n    type: openvino\n    device: CPU   # GPU for an "
                                        f"Intel iGPU\nmodel:\n  path: plus://{mid}-onnx\n")
    assert fr["onnx"]["config"] == f"detectors:\n  onnx:\n    type: onnx\nmodel:\n  path: plus://{mid}-onnx\n"

    cache = tmp_path / "model_cache"
    out = publishing.install(reg, "u_a", cache, detector="openvino")
    assert out["frigate_id"] == f"{mid}-onnx" and out["config"] == fr["openvino"]["config"]
    info = json.loads((cache / f"{mid}-onnx.json").read_text())
    assert (info["type"], info["inputDataType"], info["supportedDetectors"]) == ("yolonas", "int", ["onnx", "openvino"])
    assert info["labelMap"]["2"] == "car" and info["attributes"]["person"] == ["face"]
    assert (cache / f"{mid}-onnx").read_bytes() == tiny_onnx.read_bytes()
    # Frigate's two runtimes open the extension-less file with its JSON's conventions
    from camtune.model.onnx import ONNXDetector
    for runtime in ("onnxruntime", "openvino"):
        assert ONNXDetector(cache / f"{mid}-onnx", runtime=runtime).run(
            np.zeros((1, 320, 320, 3), np.uint8)).shape[1] == 7
    assert publishing.install(reg, "u_a", cache, detector="onnx")["frigate_id"] == f"{mid}-onnx"

    # a model published without the ONNX variant says what it has
    plain = _publish(_params(registry_params), make_publish_inputs(tmp_path / "ws2", tiny_tflite, variant=b"2"),
                     tmp_path)
    with pytest.raises(StepFailed, match=r"no variant for the openvino detector \(has: cpu, edgetpu\)"):
        publishing.install(reg, "u_a", cache, model_id=plain["model_id"], detector="openvino")


def test_onnx_without_its_frigate_info_is_refused(tiny_tflite, tiny_onnx, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite, onnx=tiny_onnx)
    (inputs["export_dir"] / "model.onnx.json").unlink()
    params = _params(RegistryParams(kind="local", root=str(tmp_path / "registry")))
    with pytest.raises(StepFailed, match=r"model.onnx.json: missing beside model.onnx"):
        _publish(params, inputs, tmp_path)
    info = {"type": "yolonas", "width": 320, "height": 320, "inputShape": "nhwc", "pixelFormat": "rgb",
            "inputDataType": "int", "supportedDetectors": ["tensorrt"]}
    (inputs["export_dir"] / "model.onnx.json").write_text(json.dumps(info))
    with pytest.raises(StepFailed, match=r"supportedDetectors \['tensorrt'\] must name onnx"):
        _publish(params, inputs, tmp_path)
    assert open_registry(params.publish.registry).latest_model("u_a") is None
