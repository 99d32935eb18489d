"""A Frigate HTTP API on 127.0.0.1, written from Frigate's documented response shapes (0.17/0.18):
`GET /api/events` (newest first, `after`/`before` on start_time, `limit`, `cameras`, `labels`,
`has_snapshot`), `GET /api/events/{id}/snapshot-clean.webp` (and `.png` for "old" Frigate, where
the .webp route does not exist: a plain 404), 404 JSON `{"success": false, "message"}` when an
event has no clean snapshot, `POST /api/login` setting the `frigate_token` JWT cookie, and
faults on demand: a slow response, a 500 before success."""
from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

TOKEN = "eyJhbGciOiJIUzI1NiJ9.test.token"


def snapshot_bytes(width: int, height: int, fmt: str, seed: int = 0, noise: float = 0.0) -> bytes:
    from PIL import Image

    # a smooth scene (noise would make PNG/WebP coding, not the importer, the cost of the tests)
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([(xx * 255 // max(1, width - 1)), (yy * 255 // max(1, height - 1)),
                    np.full_like(xx, (seed * 37) % 256)], axis=-1).astype(np.float32)
    if noise:  # camera-like texture: a Frigate 1280x720 WebP is then ~100-200 KB
        arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    opts = {"quality": 80} if noise else {"lossless": True}  # Frigate serves lossy WebP
    Image.fromarray(arr).save(buf, fmt, **(opts if fmt == "WEBP" else {}))
    return buf.getvalue()


def make_event(i: int, *, camera: str = "front", label: str = "person", start: float = 1_790_000_000.0,
               box=(0.1, 0.2, 0.3, 0.4), score: float = 0.83, attributes=(), **extra) -> dict:
    eid = f"{start + i:.6f}-ev{i:04d}"
    return {
        "id": eid, "label": label, "sub_label": None, "camera": camera,
        "start_time": start + i, "end_time": start + i + 5, "false_positive": None, "zones": [],
        "thumbnail": None, "has_clip": True, "has_snapshot": True, "retain_indefinitely": False,
        "plus_id": None, "model_hash": "abc123hash", "detector_type": "cpu", "model_type": "ssd",
        "data": {"box": list(box), "region": [0.0, 0.0, 0.5, 0.9], "score": score, "top_score": score,
                 "attributes": [dict(a) for a in attributes], "type": "object",
                 "snapshot_frame_time": start + i + 1.5},
        **extra,
    }


@dataclass
class FrigateState:
    events: list[dict] = field(default_factory=list)
    snapshots: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # id -> (bytes, "webp"|"png")
    no_snapshot_message: dict[str, str] = field(default_factory=dict)      # id -> 404 message
    old_frigate: bool = False            # only .png routes exist
    require_login: bool = False
    users: dict[str, str] = field(default_factory=lambda: {"admin": "secret"})
    slow: dict[str, float] = field(default_factory=dict)    # path prefix -> seconds to sleep (once per key)
    slow_always: float = 0.0
    fail_once: set[str] = field(default_factory=set)        # paths answered 500 once
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    state: FrigateState

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj, headers=None):
        self._send(code, json.dumps(obj).encode(), "application/json", headers)

    def _authed(self) -> bool:
        if not self.state.require_login:
            return True
        cookie = self.headers.get("Cookie", "")
        auth = self.headers.get("Authorization", "")
        return f"frigate_token={TOKEN}" in cookie or auth == f"Bearer {TOKEN}"

    def _faults(self, path: str) -> bool:
        st = self.state
        with st.lock:
            st.requests.append(self.path)
            fail = path in st.fail_once
            st.fail_once.discard(path)
            delay = next((st.slow.pop(k) for k in list(st.slow) if path.startswith(k)), 0.0)
        if delay or st.slow_always:
            time.sleep(delay or st.slow_always)
        if fail:
            self._json(500, {"success": False, "message": "Internal server error"})
            return True
        return False

    def do_POST(self):
        path = urlparse(self.path).path
        if self._faults(path):
            return
        if path == "/api/login":
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.state.users.get(body.get("user")) == body.get("password"):
                self._send(200, b"", "text/plain",
                           {"Set-Cookie": f"frigate_token={TOKEN}; Path=/; HttpOnly; SameSite=lax"})
            else:
                self._json(401, {"message": "Login failed"})
            return
        self._json(404, {"detail": "Not Found"})

    def do_GET(self):
        url = urlparse(self.path)
        path, q = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self._faults(path):
            return
        if not self._authed():
            self._json(401, {"message": "Unauthorized"})
            return
        st = self.state
        if path == "/api/events":
            evs = sorted(st.events, key=lambda e: e["start_time"], reverse=True)
            if q.get("has_snapshot") == "1":
                evs = [e for e in evs if e["has_snapshot"]]
            if q.get("in_progress") == "0":
                evs = [e for e in evs if e["end_time"] is not None]
            if "after" in q:
                evs = [e for e in evs if e["start_time"] > float(q["after"])]
            if "before" in q:
                evs = [e for e in evs if e["start_time"] < float(q["before"])]
            if q.get("cameras", "all") != "all":
                evs = [e for e in evs if e["camera"] in q["cameras"].split(",")]
            if q.get("labels", "all") != "all":
                evs = [e for e in evs if e["label"] in q["labels"].split(",")]
            self._json(200, evs[: int(q.get("limit", 100))])
            return
        parts = path.split("/")
        if len(parts) == 5 and parts[1:3] == ["api", "events"]:
            eid, name = parts[3], parts[4]
            ext = name.rsplit(".", 1)[-1]
            if name.startswith("snapshot-clean.") and not (st.old_frigate and ext == "webp") \
                    and ext in ("webp", "png"):
                if eid in st.no_snapshot_message:
                    self._json(404, {"success": False, "message": st.no_snapshot_message[eid]})
                    return
                if eid not in st.snapshots:
                    self._json(404, {"success": False, "message": "Event not found"})
                    return
                data, fmt = st.snapshots[eid]
                self._send(200, data, f"image/{fmt}")
                return
        self._json(404, {"detail": "Not Found"})  # FastAPI's unknown-route answer


class FrigateServer:
    def __init__(self, state: FrigateState | None = None):
        self.state = state or FrigateState()
        handler = type("H", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, event: dict, image: bytes | None = None, fmt: str = "webp") -> dict:
        self.state.events.append(event)
        if image is not None:
            self.state.snapshots[event["id"]] = (image, fmt)
        return event


def populate(server: FrigateServer, n: int, *, width: int = 64, height: int = 36, fmt: str = "webp",
             cameras=("front", "drive"), labels=("person", "car", "truck", "bicycle")) -> list[dict]:
    """n events cycling cameras and labels, each with a (tiny) clean snapshot."""
    img = snapshot_bytes(width, height, "WEBP" if fmt == "webp" else "PNG")
    return [server.add(make_event(i, camera=cameras[i % len(cameras)], label=labels[i % len(labels)]),
                       img, fmt) for i in range(n)]
