"""Fixtures and helpers for the registry/publish tests: a real S3 HTTP endpoint on loopback
(moto in server mode), a fault-injecting HTTP proxy in front of it, and tiny publish inputs
(a real TFLite flatbuffer made with TF, gate/metrics/filters/report, finetune lineage).

Imported by tests/conftest.py so its fixtures are visible everywhere; heavy imports stay inside
the fixtures."""
from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import threading
import uuid
from pathlib import Path

import pytest

LABELS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog", "cat", "deer"]


@contextlib.contextmanager
def moto_server(aws_dir: Path):
    """moto's S3 in server mode on 127.0.0.1 (a free port), with dummy credentials in the env so
    boto3's normal credential chain finds them (restored after). Yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    empty = aws_dir / "empty"  # never a developer's real profile
    empty.write_text("")
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The session's S3 endpoint on loopback (moto_server)."""
    with moto_server(tmp_path_factory.mktemp("aws")) as url:
        yield url


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket per test (moto state is shared by the session's server)."""
    import boto3

    name = f"camtune-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class FaultProxy:
    """A loopback HTTP proxy in front of an S3 endpoint that answers `503 SlowDown` to the first
    `fail_first` requests whose method is in `methods`, and forwards everything else unchanged."""

    def __init__(self, upstream: str, fail_first: int, methods: tuple[str, ...] = ("PUT", "GET", "HEAD")):
        self.upstream = upstream.removeprefix("http://")
        self.remaining = fail_first
        self.methods = methods
        self.failed = 0
        self.forwarded = 0
        self.bytes_up = 0    # request bodies forwarded (what clients uploaded)
        self.bytes_down = 0  # response bodies returned (what clients downloaded)
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                with proxy._lock:
                    inject = self.command in proxy.methods and proxy.remaining > 0
                    if inject:
                        proxy.remaining -= 1
                        proxy.failed += 1
                    else:
                        proxy.forwarded += 1
                if inject:
                    payload = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                               b"<Message>Please reduce your request rate.</Message></Error>")
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                                 headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    with proxy._lock:
                        proxy.bytes_up += len(body)
                        proxy.bytes_down += len(data) if self.command != "HEAD" else 0
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                            self.send_header(k, v)
                    # HEAD has no body: pass the object's own length on (a 0 would read as an empty object)
                    length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------
# publish inputs


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    """A real (tiny) TFLite flatbuffer with Frigate's input: uint8 [1, 320, 320, 3]."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 320, 320, 3], tf.uint8)])
    def detect(image):
        x = tf.cast(image, tf.float32) / 255.0
        return tf.reduce_mean(x, axis=[1, 2])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([detect.get_concrete_function()], detect)
    path = tmp_path_factory.mktemp("tflite") / "model.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A real (tiny) ONNX file with the export's I/O: uint8 [1,320,320,3] -> float32 [rows, 7]."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2], keepdims=0),   # [1, 3]
             helper.make_node("Pad", ["m", "pads"], ["output0"])]                     # [1, 7]
    shape = helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, 4])
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 320, 320, 3])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["rows", 7])], [shape])
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def make_publish_inputs(root: Path, tflite: Path, *, blessed: bool = True, verdict: str | None = None,
                        variant: bytes = b"",
                        edgetpu: bool = True, onnx: Path | None = None, user_image_ids=range(1, 21),
                        user_id: str = "u_a") -> dict[str, Path]:
    """artifacts/{export,evaluate,finetune,train_base,sample} under `root`, as the stages write them.
    `variant` bytes are appended to the model so two calls give two distinct models (TFLite
    ignores trailing bytes after the flatbuffer)."""
    art = root / "artifacts"
    export, evaluate, finetune = art / "export", art / "evaluate", art / "finetune"
    base_model, sample = art / "train_base" / "model", art / "sample"
    for d in (export, evaluate, finetune, base_model, sample):
        d.mkdir(parents=True, exist_ok=True)
    (export / "model.tflite").write_bytes(tflite.read_bytes() + variant)
    if edgetpu:
        # stands for the compiler's output; publish only moves and checksums it
        (export / "model_edgetpu.tflite").write_bytes(tflite.read_bytes() + b"edgetpu" + variant)
    if onnx is not None:  # export's model.onnx + model.onnx.json (camtune/steps/export/build.py)
        (export / "model.onnx").write_bytes(onnx.read_bytes())
        (export / "model.onnx.json").write_text(json.dumps(
            {"type": "yolonas", "width": 320, "height": 320, "inputShape": "nhwc", "pixelFormat": "rgb",
             "inputDataType": "int", "labelMap": {str(i): n for i, n in enumerate(LABELS)},
             "supportedDetectors": ["onnx", "openvino"]}))
    (export / "labelmap.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(LABELS)))
    verdict = verdict or ("blessed" if blessed else "not_blessed")
    gain = {"blessed": ("passed", 0.11, [0.05, 0.17]), "not_blessed": ("failed", -0.1, [-0.16, -0.04]),
            "inconclusive": ("inconclusive", 0.02, [-0.03, 0.07])}[verdict]
    checks = [{"name": "user_gain", "metric": "user.map50", "kind": "gain", "threshold": 0.0, "point": gain[1],
               "interval": gain[2], "tuned": 0.41, "baseline": 0.41 - gain[1], "verdict": gain[0],
               "passed": gain[0] == "passed", "required": True, "resolve": None,
               "why": "tuned mAP@.5 on the user's holdout must beat the baseline by more than 0.0"},
              {"name": "global_floor", "metric": "global.map50", "kind": "floor", "threshold": 0.05, "point": 0.3,
               "interval": [0.25, 0.35], "tuned": 0.3, "baseline": 0.3, "verdict": "passed", "passed": True,
               "required": False, "resolve": None, "why": "absolute floor on the global mAP@.5"}]
    (evaluate / "gate.json").write_text(json.dumps(  # as camtune/steps/evaluate/gate.py writes it
        {"verdict": verdict, "blessed": verdict == "blessed", "baseline": "base", "summary": f"{verdict} (test)",
         "deciding": ["user_gain"], "failed": ["user_gain"] if verdict == "not_blessed" else [],
         "inconclusive": ["user_gain"] if verdict == "inconclusive" else [], "uninformative": [],
         "advice": ["the user holdout has 5 images; about 40 verified images would resolve it"]
         if verdict == "inconclusive" else [], "checks": checks}))
    (evaluate / "metrics.json").write_text(json.dumps(  # as camtune/steps/evaluate/report.py writes it
        {"blessed": blessed, "baseline": "base", "tuned": {"user": {"map": 0.2, "map50": 0.41}},
         "base": {"user": {"map": 0.15, "map50": 0.3}}}))
    (evaluate / "filters.yml").write_text("objects:\n  filters:\n    person:\n      min_score: 0.5\n      threshold: 0.7\n")
    (evaluate / "report.md").write_text("# Evaluation\n\nblessed\n")
    ids = list(user_image_ids)
    (finetune / "trained_on.json").write_text(json.dumps(  # as camtune/steps/finetune/__init__.py writes it
        {"user_id": user_id, "user": {"source": "data/sample/user", "image_ids": ids, "count": len(ids)},
         "replay": {"source": "data/sample/global", "image_ids": [1001, 1002], "count": 2}}))
    (base_model / "params.yaml").write_text("task: {}\n")
    (base_model / "labels.json").write_text(json.dumps({"names": LABELS}))
    for step in (100, 200):
        (base_model / f"ckpt-{step}.index").write_bytes(b"index%d" % step)
        (base_model / f"ckpt-{step}.data-00000-of-00001").write_bytes(b"data%d" % step)
    (base_model / "checkpoint").write_text('model_checkpoint_path: "ckpt-200"\n'
                                           'all_model_checkpoint_paths: "ckpt-100"\nall_model_checkpoint_paths: "ckpt-200"\n')
    (sample / "base_train.json").write_text(json.dumps({"name": "base_train", "image_ids": [1, 2]}))
    return {"export_dir": export, "evaluate_dir": evaluate, "finetune_dir": finetune,
            "train_base_dir": art / "train_base", "sample_dir": sample}
