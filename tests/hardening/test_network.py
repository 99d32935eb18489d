"""Bounded work on the network and in archives (issue 28, item 9): an overall deadline however
slowly a server drips, a body size cap, same-host redirects only, Retry-After capped, a zip
size cap. Against servers on loopback."""
from __future__ import annotations

import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from camtune.steps.ingest import IngestError
from camtune.steps.ingest import review
from camtune.steps.ingest import frigate as fr


class _Server:
    def __init__(self, routes):
        handler = type("H", (_Handler,), {"routes": routes, "hits": []})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.handler = handler
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    routes: dict
    hits: list

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.hits.append(self.path)
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route(self)


def _json(h, obj, status=200, headers=()):
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    for k, v in headers:
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def _drip(h):
    body = b"[" + b" " * 200 + b"]"
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        for b in body:
            h.wfile.write(bytes([b]))
            h.wfile.flush()
            time.sleep(0.2)      # each read is well inside the read timeout
    except OSError:
        pass


def _huge(h):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")   # no Content-Length: streamed until closed
    h.end_headers()
    try:
        for _ in range(64):
            h.wfile.write(b" " * 65536)
    except OSError:
        pass


@pytest.fixture
def servers():
    made = []

    def make(routes):
        s = _Server(routes)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_overall_deadline_against_a_dripping_server(servers):
    srv = servers({"/api/events": _drip})
    client = fr.FrigateClient(srv.url, read_timeout=1, retries=0, deadline=1.5)
    t0 = time.monotonic()
    with pytest.raises(fr.FrigateError, match="request_deadline_s=1.5"):
        client.get_json("/api/events")
    assert time.monotonic() - t0 < 10    # not the ~40 s the drip would take


def test_body_size_cap(servers):
    srv = servers({"/api/events": _huge,
                   "/api/events/e1/snapshot-clean.webp": _huge})
    client = fr.FrigateClient(srv.url, retries=0, max_body_bytes=100_000)
    with pytest.raises(fr.FrigateError, match="max_response_bytes=100000"):
        client.get_json("/api/events")
    with pytest.raises(fr.SnapshotRefused, match="max_response_bytes"):   # that event's finding
        client.snapshot("e1")


def test_redirects_only_to_the_same_host(servers):
    other = servers({"/api/events": lambda h: _json(h, [{"id": "stolen"}])})
    srv = servers({"/api/events": lambda h: _json(h, {}, 302, [("Location", other.url + "/api/events")]),
                   "/api/version": lambda h: _json(h, {}, 307, [("Location", "/api/v2")]),
                   "/api/v2": lambda h: _json(h, {"ok": 1})})
    client = fr.FrigateClient(srv.url, retries=0)
    with pytest.raises(fr.FrigateError, match="another host; refused"):
        client.get_json("/api/events")
    assert other.handler.hits == []          # never asked
    assert client.get_json("/api/version") == {"ok": 1}   # same origin: followed


def test_retry_after_is_capped(servers):
    state = {"n": 0}

    def busy_then_ok(h):
        state["n"] += 1
        if state["n"] == 1:
            _json(h, {"message": "busy"}, 503, [("Retry-After", "21600")])
        else:
            _json(h, [])
    srv = servers({"/api/events": busy_then_ok})
    client = fr.FrigateClient(srv.url, retries=2, backoff=0, max_retry_after=1)
    t0 = time.monotonic()
    assert client.get_json("/api/events") == []
    assert state["n"] == 2 and time.monotonic() - t0 < 10


def test_zip_export_size_cap(tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", b'{"images": [], "pad": "' + b"0" * 5_000_000 + b'"}')
    assert z.stat().st_size < 100_000
    with pytest.raises(IngestError, match="unzips to .* bytes"):
        review.read_export(z, max_bytes=1_000_000)
    assert review.read_export(z, max_bytes=10_000_000)["images"] == []
    plain = tmp_path / "big.json"
    plain.write_text(json.dumps({"x": "0" * 2000}))
    with pytest.raises(IngestError, match="larger than 1000 bytes"):
        review.read_export(plain, max_bytes=1000)
