"""Import a user's Frigate tracked objects (events with a clean snapshot) as unverified images.

Frigate's HTTP API (0.17/0.18; behaviour read from its docs and source, none of its code used):
`GET /api/events?has_snapshot=1&limit=N&before=T` lists events newest first (start_time < before),
so paging moves `before` to the oldest `start_time` seen. Each event carries `data.box` and
`data.attributes[].box` as RELATIVE [x, y, w, h] of the detect frame, `data.score`/`top_score`.
`GET /api/events/{id}/snapshot-clean.webp` (0.17+; `.png` before) is the frame without drawn
boxes; a 404 with `{"success": false, "message": ...}` when snapshots are off or the event has
no clean copy. The authenticated port (8971) takes `POST /api/login {"user","password"}`, which
sets a JWT cookie (`frigate_token` by default), or `Authorization: Bearer <token>`.

Only the event's own object (and its attributes) is boxed in a snapshot: other objects in the
frame are not, so imported images are `verified: false` until a human checks them.

Hostile input (docs/hardening.md): a snapshot that cannot be imported (corrupt, over the shared
decoder's limits, too large an answer) is a finding of that event, recorded with event id, file
and reason, and kept in a ledger so a re-run does not ask again; every request is bounded (overall
deadline, size cap, same-origin redirects only, Retry-After capped); a URL with credentials is
refused.

Resume: images are written first (atomically), then `annotations.json` is replaced atomically
once per batch; an event is imported iff an image record names it, so a killed run redoes at
most one batch and never duplicates an event.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

from camtune.core import atomic
from camtune.steps.ingest.coco import IngestError, copy_coco, label_ids, load_coco, next_id, save_coco
from camtune.model.images import ImageRefused, Limits, open_checked
from camtune.core.redaction import userinfo_problem

log = logging.getLogger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SNAPSHOT_DIR = "images/frigate"
SNAPSHOT_SOURCES = ("snapshot-clean.webp", "snapshot-clean.png")  # 0.17+, then older versions
ENABLE_SNAPSHOTS = ("enable them in Frigate's config for the camera: `snapshots: {enabled: true, "
                    "clean_copy: true}` (clean_copy is needed: the boxed snapshot has Frigate's "
                    "drawings burnt in)")


class FrigateError(IngestError):
    """Frigate refused or could not be reached; the message says what to do."""


class ResponseTooLarge(FrigateError):
    """An answer over ingest.frigate.max_response_bytes."""


MAX_REDIRECTS = 3


# ------------------------------------------------------------------ pure functions

def to_unix(value: str | float | int | None) -> float | None:
    """'2026-10-01' / ISO 8601 (naive = UTC) / unix seconds -> unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise IngestError(f"--after {value!r}: expected a date (2026-10-01), an ISO 8601 time "
                          "or unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def relative_to_pixels(box, width: int, height: int) -> list[float]:
    """Frigate's relative [x, y, w, h] -> pixels of the real snapshot. Decimal arithmetic on the
    numbers as Frigate wrote them, so 0.1 of 1280 is 128.0, not 128.00000000000003."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"expected a relative [x, y, w, h], got {box!r}")
    x, y, w, h = (Decimal(repr(float(v))) for v in box)
    if min(x, y) < 0 or min(w, h) <= 0 or x + w > Decimal("1.000001") or y + h > Decimal("1.000001"):
        raise ValueError(f"relative box {list(box)} is outside 0..1")
    W, H = Decimal(width), Decimal(height)
    return [float(x * W), float(y * H), float(w * W), float(h * H)]


def map_label(frigate_label: str, label_map: dict[str, str | None], ours: set[str]) -> str | None:
    """Frigate label -> ours via the params table (case-insensitive); None = not mapped."""
    table = {k.lower(): v for k, v in label_map.items()}
    target = table.get(str(frigate_label).lower())
    if target is None:
        return None
    if target not in ours:
        raise IngestError(f"ingest.frigate.label_map maps {frigate_label!r} to {target!r}, "
                          f"which is not one of labels.names")
    return target


def snapshot_frame_time(event: dict) -> float:
    data = event.get("data") or {}
    for key in ("snapshot_frame_time", "frame_time"):
        if isinstance(data.get(key), (int, float)):
            return float(data[key])
    snap = data.get("snapshot") if isinstance(data.get("snapshot"), dict) else {}
    if isinstance(snap.get("frame_time"), (int, float)):
        return float(snap["frame_time"])
    return float(event["start_time"])


@dataclass
class Counts:
    events_seen: int = 0
    imported: int = 0
    already_imported: int = 0
    in_progress: int = 0
    boxes: int = 0
    attribute_boxes: int = 0
    dropped_unmapped: dict[str, int] = field(default_factory=dict)
    no_snapshot: dict[str, int] = field(default_factory=dict)   # Frigate's 404 message -> count
    bad_events: list[str] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)           # {event, file, reason}: this run's findings
    refused_before: int = 0                                     # skipped: refused for good by an earlier run

    def drop(self, label: str) -> None:
        self.dropped_unmapped[label] = self.dropped_unmapped.get(label, 0) + 1

    def as_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


def event_annotations(event: dict, width: int, height: int, label_map: dict, ours: set[str],
                      counts: Counts) -> list[tuple[str, list[float], float | None]]:
    """(our label, pixel bbox, score) of the event's object and its attributes; unmapped labels
    are dropped and counted."""
    data = event.get("data") or {}
    out = []
    items = [(event.get("label"), data.get("box"), data.get("score", data.get("top_score")), False)]
    for attr in data.get("attributes") or []:
        if isinstance(attr, dict):
            items.append((attr.get("label"), attr.get("box"), attr.get("score"), True))
    for label, box, score, is_attr in items:
        if box is None:
            continue
        ours_label = map_label(label, label_map, ours)
        if ours_label is None:
            counts.drop(str(label))
            continue
        score = float(score) if isinstance(score, (int, float)) else None
        out.append((ours_label, relative_to_pixels(box, width, height),
                    None if score is None else min(1.0, max(0.0, score))))
        if is_attr:
            counts.attribute_boxes += 1
        else:
            counts.boxes += 1
    return out


STORE_EXT = {"jpeg": "jpg", "png": "png"}


SNAPSHOT_FORMATS = ("WEBP", "PNG", "JPEG")


class SnapshotRefused(IngestError):
    """One event's snapshot cannot be imported (a finding, not a failed run); `permanent`: a
    re-run would get the same answer, so the event is not asked for again."""

    def __init__(self, message: str, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent

    def __reduce__(self):
        return (type(self), (str(self), self.permanent))


def decode_snapshot(data: bytes, event_id: str, store: str = "jpeg", quality: int = 95,
                    limits: Limits | None = None) -> tuple[bytes, int, int]:
    """WebP or PNG bytes -> (stored bytes, width, height), through the shared checked decoder
    (validate.max_pixels / max_image_bytes from the header, before any pixel is inflated).
    TensorFlow's decoder (TFRecords) and validate read JPEG and PNG, not WebP: JPEG at high quality
    by default (a 1280x720 frame is ~8x smaller than PNG, ~6x faster to encode), PNG when lossless
    matters more than disk."""
    from PIL import Image

    try:
        with open_checked(data, limits, f"event {event_id}: snapshot", SNAPSHOT_FORMATS) as img:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                rgb = img.convert("RGB")
    except ImageRefused as exc:
        raise SnapshotRefused(str(exc)) from None
    except Exception as exc:  # truncated / corrupt data fails in the decode
        raise SnapshotRefused(f"event {event_id}: the snapshot is not a readable image: {exc}") from None
    buf = io.BytesIO()
    if store == "png":
        rgb.save(buf, "PNG", compress_level=3)
    else:
        rgb.save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue(), rgb.width, rgb.height


# ------------------------------------------------------------------ HTTP client

class FrigateClient:
    """requests.Session with urllib3 retries (5xx, connection errors, read timeouts) with
    exponential backoff, (connect, read) timeouts, and optional login."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 retries: int = 4, backoff: float = 0.5, username: str | None = None,
                 password: str | None = None, token: str | None = None, deadline: float = 120.0,
                 max_body_bytes: int = 32 * 2**20, max_retry_after: float = 30.0):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        if not url or not re.match(r"^https?://", url):
            raise FrigateError(f"Frigate URL {url!r}: expected http(s)://host:port")
        problem = userinfo_problem(url, "Frigate URL")
        if problem:
            raise FrigateError(problem)
        self.base = url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.deadline = float(deadline)
        self.max_body = int(max_body_bytes)
        self.session = requests.Session()
        # Retry-After is honoured up to max_retry_after (urllib3's own default is 6 hours);
        # redirects are not followed by urllib3/requests: _request follows same-origin ones only
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                      status_forcelist=(500, 502, 503, 504), allowed_methods=None,  # login too
                      raise_on_status=False, respect_retry_after_header=True, redirect=0,
                      raise_on_redirect=False, retry_after_max=max(0, int(max_retry_after)),
                      backoff_max=max(1.0, float(max_retry_after)))
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if username:
            self.login(username, password or "")

    def _origin(self, url: str) -> tuple[str, str, int | None]:
        u = urlsplit(url)
        return u.scheme.lower(), (u.hostname or "").lower(), u.port or {"http": 80, "https": 443}.get(u.scheme.lower())

    def _request(self, method: str, path: str, **kw):
        """One request with every bound: retries (5xx, resets) with Retry-After capped, redirects
        followed only to the same scheme, host and port, the body read under an overall deadline
        and a size cap. FrigateError naming the request otherwise."""
        import requests

        url = f"{self.base}{path}"
        start = time.monotonic()
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                r = self.session.request(method, url, timeout=self.timeout, stream=True, allow_redirects=False, **kw)
            except requests.exceptions.RequestException as exc:
                raise FrigateError(f"{method} {url}: Frigate did not answer after retries: {exc}") from None
            if r.is_redirect:
                target = urljoin(url, r.headers.get("location", ""))
                r.close()
                if self._origin(target) != self._origin(self.base):
                    raise FrigateError(f"{method} {url}: Frigate redirected to {target}, another host; refused "
                                       f"(only {self.base} is trusted: set ingest.frigate.url to the final address)")
                url = target
                if r.status_code == 303 or (r.status_code in (301, 302) and method == "POST"):
                    method, kw = "GET", {k: v for k, v in kw.items() if k not in ("json", "data")}
                continue
            self._read_bounded(r, method, url, start)
            return r
        raise FrigateError(f"{method} {self.base}{path}: more than {MAX_REDIRECTS} redirects")

    def _read_bounded(self, r, method: str, url: str, start: float) -> None:
        """Read the body into `r` (so .content/.json() work) within the deadline and the size cap."""
        declared = r.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            r.close()
            raise ResponseTooLarge(f"{method} {url}: the answer is {declared} bytes, over "
                                   f"ingest.frigate.max_response_bytes={self.max_body}")
        chunks, size = [], 0
        try:
            while True:
                if time.monotonic() - start > self.deadline:
                    raise FrigateError(f"{method} {url}: no complete answer within "
                                       f"ingest.frigate.request_deadline_s={self.deadline:g} s")
                chunk = r.raw.read1(64 * 1024, decode_content=True)  # at most one read: the deadline is checked
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_body:
                    raise ResponseTooLarge(f"{method} {url}: the answer is over "
                                           f"ingest.frigate.max_response_bytes={self.max_body}")
                chunks.append(chunk)
        except FrigateError:
            r.close()
            raise
        except Exception as exc:  # timeouts and resets mid-body (urllib3/requests errors)
            r.close()
            raise FrigateError(f"{method} {url}: the answer broke off: {exc}") from None
        r._content = b"".join(chunks)
        r._content_consumed = True
        r.close()

    def login(self, username: str, password: str) -> None:
        r = self._request("POST", "/api/login", json={"user": username, "password": password})
        if r.status_code == 401:
            raise FrigateError(f"{self.base}: login as {username!r} failed (401); check the user "
                               "and CAMTUNE_FRIGATE_PASSWORD")
        if r.status_code == 404:
            raise FrigateError(f"{self.base}: authentication is disabled on this port; drop --username")
        if r.status_code >= 400:
            raise FrigateError(f"{self.base}: login answered {r.status_code}: {r.text[:200]}")
        if not self.session.cookies:
            raise FrigateError(f"{self.base}: login answered {r.status_code} but set no token cookie")

    def get_json(self, path: str, params: dict | None = None):
        r = self._request("GET", path, params=params)
        if r.status_code in (401, 403):
            raise FrigateError(f"GET {r.url}: {r.status_code}; this port needs a login "
                               "(--username and CAMTUNE_FRIGATE_PASSWORD, or CAMTUNE_FRIGATE_TOKEN)")
        if r.status_code >= 400:
            raise FrigateError(f"GET {r.url}: Frigate answered {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError:
            raise FrigateError(f"GET {r.url}: expected JSON, got {r.text[:100]!r}") from None

    def events(self, *, after: float | None = None, cameras: list[str] | None = None,
               labels: list[str] | None = None, page_size: int = 100) -> Iterator[dict]:
        """Every event with a snapshot, newest first, paging by `before`."""
        before: float | None = None
        seen: set[str] = set()
        while True:
            # finished events only: a tracked object still in view may get a better snapshot
            q = {"has_snapshot": 1, "in_progress": 0, "limit": page_size, "include_thumbnails": 0}
            if cameras:
                q["cameras"] = ",".join(cameras)
            if labels:
                q["labels"] = ",".join(labels)
            if after is not None:
                q["after"] = after
            if before is not None:
                q["before"] = before
            page = self.get_json("/api/events", q)
            if not isinstance(page, list):
                raise FrigateError(f"GET /api/events: expected a list of events, got {type(page).__name__}")
            fresh = [e for e in page if isinstance(e, dict) and e.get("id") not in seen]
            for e in fresh:
                seen.add(e.get("id"))
                yield e
            if len(page) < page_size or not fresh:
                return
            before = min(float(e["start_time"]) for e in page)

    def snapshot(self, event_id: str) -> tuple[bytes | None, str | None]:
        """(image bytes, None) or (None, Frigate's reason) for an event's clean snapshot."""
        reason = None
        for name in SNAPSHOT_SOURCES:
            try:
                r = self._request("GET", f"/api/events/{event_id}/{name}")
            except ResponseTooLarge as exc:
                raise SnapshotRefused(str(exc)) from None
            if r.status_code == 200:
                return r.content, None
            if r.status_code in (401, 403):
                raise FrigateError(f"GET {r.url}: {r.status_code}; this port needs a login")
            if r.status_code == 404:
                try:
                    body = r.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("success") is False:
                    return None, str(body.get("message") or "snapshot not available")
                reason = "no clean snapshot endpoint (.webp or .png)"  # older Frigate: try .png
                continue
            raise SnapshotRefused(f"GET {r.url}: Frigate answered {r.status_code}: {r.text[:200]}",
                                  permanent=False)
        return None, reason


# ------------------------------------------------------------------ the import

def _config_reason(message: str) -> bool:
    """Frigate's 404 messages that mean "switched off in the config" rather than "this one event"."""
    m = message.lower()
    return "must be enabled" in m or "clean snapshot not available" in m or "endpoint" in m


@dataclass(frozen=True)
class ImportOptions:
    user_id: str
    label_names: tuple[str, ...]
    attribute_parents: dict
    label_map: dict
    after: float | None = None
    cameras: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    page_size: int = 100
    batch_size: int = 25
    workers: int = 4             # snapshots downloaded and re-encoded at once
    store: str = "jpeg"          # jpeg | png
    jpeg_quality: int = 95
    progress: bool = True
    limits: Limits = Limits()     # the shared decoder's limits (validate.max_pixels, max_image_bytes)
    refused_path: str | None = None  # ledger of events refused for good: a re-run does not ask again


def read_refused(path: str | Path | None) -> dict[str, dict]:
    """event id -> {file, reason} of the events an earlier import refused for good."""
    if not path or not Path(path).is_file():
        return {}
    import json

    try:
        doc = json.loads(Path(path).read_text())
        return {str(k): v for k, v in doc.get("events", {}).items()}
    except (OSError, ValueError, AttributeError):
        raise IngestError(f"{path}: unreadable list of refused Frigate events; delete it to ask Frigate "
                          "for every event again") from None


def imported_events(coco: dict) -> set[str]:
    return {img["source"]["frigate_event"] for img in coco["images"]
            if isinstance(img.get("source"), dict) and img["source"].get("frigate_event")}


def import_frigate(client: FrigateClient, root: str | Path, opts: ImportOptions,
                   on_event: Callable[[int], None] | None = None) -> dict:
    """Import every new event into the dataset at `root`; returns the counts. `on_event(n)` is
    called after each downloaded event (tests inject a failure there)."""
    from tqdm import tqdm

    root = Path(root)
    coco = load_coco(root, list(opts.label_names), opts.attribute_parents, create=True)
    cat_ids = label_ids(coco, list(opts.label_names))
    ours = set(opts.label_names)
    done = imported_events(coco)
    taken_files = {img["file_name"] for img in coco["images"]}
    counts = Counts()
    pending: list[tuple[dict, list]] = []  # (image record, [(label, bbox, score)])

    def flush():
        nonlocal coco
        if not pending:
            return
        before, after = coco, copy_coco(coco)
        img_id, ann_id = next_id(after["images"]), next_id(after["annotations"])
        for record, anns in pending:
            after["images"].append({**record, "id": img_id})
            for label, bbox, score in anns:
                a = {"id": ann_id, "image_id": img_id, "category_id": cat_ids[label], "bbox": bbox,
                     "area": bbox[2] * bbox[3], "iscrowd": 0, "origin": "frigate"}
                if score is not None:
                    a["score"] = score
                after["annotations"].append(a)
                ann_id += 1
            img_id += 1
        save_coco(root, before, after)
        save_refused()
        coco = after
        pending.clear()

    refused_before = read_refused(opts.refused_path)
    refused_now: dict[str, dict] = {}

    def refuse(eid: str, file_name: str, reason: str, permanent: bool) -> None:
        counts.refused.append({"event": eid, "file": file_name, "reason": reason})
        if permanent:
            refused_now[eid] = {"file": file_name, "reason": reason}
        log.warning("frigate event %s (%s) refused: %s", eid, file_name, reason)

    def save_refused() -> None:
        if opts.refused_path and refused_now:
            atomic.write_json(opts.refused_path, {"events": {**refused_before, **refused_now}})

    def fetch(item: tuple[dict, str]):
        """Download and re-encode one snapshot (threads: the HTTP wait and PIL's codecs release the GIL)."""
        event, _ = item
        try:
            data, reason = client.snapshot(str(event["id"]))
            if data is None:
                return None, reason
            return decode_snapshot(data, str(event["id"]), opts.store, opts.jpeg_quality, opts.limits), None
        except SnapshotRefused as exc:  # this event only: a finding, the import goes on
            return exc, None

    def process(chunk: list[tuple[dict, str]], pool) -> None:
        try:
            _process(chunk, pool)
        finally:
            flush()  # one atomic dataset update per batch (the resume point); on an abort too, so
            #          no image written to disk is left without its record

    def _process(chunk: list[tuple[dict, str]], pool) -> None:
        nonlocal n
        for (event, file_name), (decoded, reason) in zip(chunk, pool.map(fetch, chunk)):
            eid = str(event["id"])
            n += 1
            if on_event is not None:
                on_event(n)
            if decoded is None:
                counts.no_snapshot[reason] = counts.no_snapshot.get(reason, 0) + 1
                continue
            if isinstance(decoded, SnapshotRefused):
                refuse(eid, file_name, str(decoded), decoded.permanent)
                continue
            stored, width, height = decoded
            try:
                anns = event_annotations(event, width, height, opts.label_map, ours, counts)
            except (ValueError, KeyError, TypeError) as exc:
                counts.bad_events.append(f"{eid}: {exc}")
                refuse(eid, file_name, f"boxes: {exc}", True)
                continue
            atomic.write_bytes(root / file_name, stored)
            record = {
                "file_name": file_name, "width": width, "height": height, "user_id": opts.user_id,
                "camera": event["camera"], "captured_at": iso_utc(snapshot_frame_time(event)),
                "verified": False, "verified_at": None, "sha256": hashlib.sha256(stored).hexdigest(),
                "source": {"frigate_event": eid, "model_hash": event.get("model_hash"),
                           "detector_type": event.get("detector_type")},
            }
            pending.append((record, anns))
            done.add(eid)
            counts.imported += 1

    events = client.events(after=opts.after, cameras=list(opts.cameras), labels=list(opts.labels),
                           page_size=opts.page_size)
    bar = tqdm(events, desc="frigate events", unit="event", disable=not opts.progress)
    n = 0
    chunk: list[tuple[dict, str]] = []
    try:
        with ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="frigate") as pool:
            for event in bar:
                counts.events_seen += 1
                eid = str(event.get("id", ""))
                if eid in done:
                    counts.already_imported += 1
                    continue
                if eid in refused_before:
                    counts.refused_before += 1
                    continue
                if event.get("end_time") is None:  # still tracked: next run
                    counts.in_progress += 1
                    continue
                if not SAFE_ID.fullmatch(eid) or not SAFE_ID.fullmatch(str(event.get("camera", ""))):
                    counts.bad_events.append(f"{eid!r}: unusable id or camera name {event.get('camera')!r}")
                    continue
                file_name = f"{SNAPSHOT_DIR}/{event['camera']}/{eid}.{STORE_EXT[opts.store]}"
                if file_name in taken_files:  # a record names the file but not the event: not ours
                    counts.bad_events.append(f"{eid}: {file_name} already belongs to another image")
                    continue
                taken_files.add(file_name)
                chunk.append((event, file_name))
                if len(chunk) >= opts.batch_size:
                    process(chunk, pool)
                    chunk = []
            process(chunk, pool)
    finally:
        bar.close()
        save_refused()
    if counts.imported == 0 and counts.no_snapshot and all(_config_reason(m) for m in counts.no_snapshot):
        reasons = "; ".join(f"{m!r} x{c}" for m, c in counts.no_snapshot.items())
        raise FrigateError(f"Frigate served no clean snapshot for any of {sum(counts.no_snapshot.values())} "
                           f"new event(s) ({reasons}): snapshots or clean_copy are disabled; {ENABLE_SNAPSHOTS}")
    return counts.as_dict()


def client_from_params(fp, url: str | None = None, username: str | None = None) -> FrigateClient:
    import os

    url = url or fp.url
    if not url:
        raise FrigateError("no Frigate URL: pass --url http://frigate:5000 or set ingest.frigate.url")
    username = username or fp.username
    password = os.environ.get("CAMTUNE_FRIGATE_PASSWORD")
    if username and password is None:
        raise FrigateError(f"login as {username!r} needs the password in CAMTUNE_FRIGATE_PASSWORD")
    return FrigateClient(url, connect_timeout=fp.connect_timeout_s, read_timeout=fp.read_timeout_s,
                         retries=fp.retries, backoff=fp.backoff_s, username=username, password=password,
                         token=os.environ.get("CAMTUNE_FRIGATE_TOKEN"), deadline=fp.request_deadline_s,
                         max_body_bytes=fp.max_response_bytes, max_retry_after=fp.max_retry_after_s)

