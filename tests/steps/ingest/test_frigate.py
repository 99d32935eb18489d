"""Frigate importer against a Frigate API on loopback (tests/support/frigate.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tests.support.frigate import (FrigateServer, FrigateState, make_event, populate,
                             snapshot_bytes)

from camtune.steps.ingest import frigate as fr

from .builders import read, verified_part, write_verified_dataset


def options(params, **kw) -> fr.ImportOptions:
    fp = params.ingest.frigate
    base = dict(user_id=params.user.id, label_names=tuple(params.labels.names),
                attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
                page_size=7, batch_size=4, progress=False)
    base.update(kw)
    return fr.ImportOptions(**base)


def client(url, **kw):
    return fr.FrigateClient(url, connect_timeout=2, read_timeout=kw.pop("read_timeout", 5), retries=3,
                            backoff=0.01, **kw)


def test_relative_boxes_exact_on_non_square_frames():
    assert fr.relative_to_pixels([0.1, 0.2, 0.3, 0.4], 1280, 720) == [128.0, 144.0, 384.0, 288.0]
    assert fr.relative_to_pixels([0.0, 0.0, 1.0, 1.0], 1920, 1080) == [0.0, 0.0, 1920.0, 1080.0]
    assert fr.relative_to_pixels([0.015625, 0.5, 0.25, 0.125], 640, 360) == [10.0, 180.0, 160.0, 45.0]
    with pytest.raises(ValueError, match="outside 0..1"):
        fr.relative_to_pixels([0.9, 0.1, 0.3, 0.1], 100, 100)


def test_import_paging_labels_formats_and_idempotence(tmp_path, params):
    root = tmp_path / "user"
    before = write_verified_dataset(root, params)
    with FrigateServer() as srv:
        evs = populate(srv, 20, width=128, height=72)  # person, car, truck, bicycle in turn
        # one PNG snapshot (older Frigate served PNG), with a face attribute, on a 1280x720 frame
        png_ev = srv.add(make_event(40, label="person", box=(0.25, 0.5, 0.125, 0.25), attributes=[
            {"box": [0.3, 0.52, 0.05, 0.05], "label": "face", "score": 0.7}]),
            snapshot_bytes(1280, 720, "PNG"), "png")
        srv.state.no_snapshot_message[evs[3]["id"]] = "Snapshot not available"
        counts = fr.import_frigate(client(srv.url), root, options(params))
        pages = [r for r in srv.state.requests if r.startswith("/api/events?")]
        assert len(pages) >= 3 and any("before=" in r for r in pages)  # paged by `before`
    coco = read(root)
    assert counts["imported"] == 20 and counts["events_seen"] == 21
    assert counts["dropped_unmapped"] == {"bicycle": 4}  # not in the label_map (the 5th had no snapshot)
    assert counts["no_snapshot"] == {"Snapshot not available": 1}
    imported = [i for i in coco["images"] if "source" in i]
    assert len(imported) == 20 and all(i["verified"] is False for i in imported)
    assert {i["source"]["frigate_event"] for i in imported} == {e["id"] for e in evs + [png_ev]} - {evs[3]["id"]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_event = {i["source"]["frigate_event"]: i for i in imported}
    truck = by_event[evs[2]["id"]]
    truck_anns = [a for a in coco["annotations"] if a["image_id"] == truck["id"]]
    assert [names[a["category_id"]] for a in truck_anns] == ["car"]  # Frigate truck -> our car
    img = by_event[png_ev["id"]]
    assert (img["width"], img["height"]) == (1280, 720) and img["file_name"].endswith(".jpg")
    from PIL import Image
    with Image.open(root / img["file_name"]) as stored:
        assert (stored.format, stored.size) == ("JPEG", (1280, 720))
    assert img["captured_at"] == fr.iso_utc(png_ev["data"]["snapshot_frame_time"])
    assert img["source"] == {"frigate_event": png_ev["id"], "model_hash": "abc123hash", "detector_type": "cpu"}
    anns = {names[a["category_id"]]: a for a in coco["annotations"] if a["image_id"] == img["id"]}
    assert anns["person"]["bbox"] == [320.0, 360.0, 160.0, 180.0]
    assert anns["person"]["origin"] == "frigate" and anns["person"]["score"] == 0.83
    assert anns["face"]["bbox"] == [384.0, 374.4, 64.0, 36.0] and anns["face"]["score"] == 0.7
    assert verified_part(coco) == verified_part(before)
    from camtune.core.dataset import load_dataset
    load_dataset(root)  # schema-valid
    # second run: nothing new, nothing downloaded, nothing rewritten
    stamp = (root / "annotations.json").stat().st_mtime_ns
    with FrigateServer(FrigateState(events=srv.state.events, snapshots=srv.state.snapshots,
                                     no_snapshot_message=srv.state.no_snapshot_message)) as srv2:
        again = fr.import_frigate(client(srv2.url), root, options(params))
        # only the event that had no snapshot is asked again (one may exist by now)
        assert [r for r in srv2.state.requests if "snapshot-clean" in r] == [
            f"/api/events/{evs[3]['id']}/snapshot-clean.webp"]
    assert again["imported"] == 0 and again["already_imported"] == 20
    assert (root / "annotations.json").stat().st_mtime_ns == stamp


def test_slow_response_and_500_are_retried_and_login(tmp_path, params):
    root = tmp_path / "user"
    state = FrigateState(require_login=True)
    with FrigateServer(state) as srv:
        evs = populate(srv, 3)
        state.fail_once.add("/api/events")                                 # a 500, then success
        state.fail_once.add(f"/api/events/{evs[1]['id']}/snapshot-clean.webp")
        state.slow[f"/api/events/{evs[0]['id']}/snapshot-clean.webp"] = 1.5  # > read timeout once
        with pytest.raises(fr.FrigateError, match="needs a login"):
            fr.import_frigate(client(srv.url), root, options(params))
        with pytest.raises(fr.FrigateError, match="login as 'admin' failed"):
            client(srv.url, username="admin", password="wrong")
        c = client(srv.url, username="admin", password="secret", read_timeout=1.0)
        counts = fr.import_frigate(c, root, options(params))
        assert counts["imported"] == 3
        assert c.session.cookies.get("frigate_token")
        # the bearer header works as well
        c2 = client(srv.url, token="eyJhbGciOiJIUzI1NiJ9.test.token")
        assert len(list(c2.events(page_size=10))) == 3
    assert len(read(root)["images"]) == 3


def test_refuses_when_clean_snapshots_are_off(tmp_path, params):
    root = tmp_path / "user"
    write_verified_dataset(root, params)
    before = (root / "annotations.json").read_bytes()
    with FrigateServer() as srv:
        for e in populate(srv, 3):
            srv.state.no_snapshot_message[e["id"]] = "Clean snapshot not available"
        with pytest.raises(fr.FrigateError, match="clean_copy: true"):
            fr.import_frigate(client(srv.url), root, options(params))
    assert (root / "annotations.json").read_bytes() == before


def test_old_frigate_png_route(tmp_path, params):
    root = tmp_path / "user"
    with FrigateServer(FrigateState(old_frigate=True)) as srv:
        evs = populate(srv, 2, fmt="png")
        counts = fr.import_frigate(client(srv.url), root, options(params, store="png"))
        served = srv.state.snapshots[evs[0]["id"]][0]
    assert counts["imported"] == 2
    import io

    import numpy as np
    from PIL import Image
    img = next(i for i in read(root)["images"] if i["source"]["frigate_event"] == evs[0]["id"])
    with Image.open(root / img["file_name"]) as a, Image.open(io.BytesIO(served)) as b:
        assert a.format == "PNG" and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def test_resume_after_injected_failure(tmp_path, params):
    root = tmp_path / "user"
    before = write_verified_dataset(root, params)
    with FrigateServer() as srv:
        populate(srv, 13)

        def boom(n):
            if n == 10:
                raise RuntimeError("killed")
        with pytest.raises(RuntimeError):
            fr.import_frigate(client(srv.url), root, options(params), on_event=boom)
        partial = read(root)
        # two batches of 4 committed, and the image the third wrote before the failure is recorded
        assert len(partial["images"]) == 1 + 9
        fr.import_frigate(client(srv.url), root, options(params))
    coco = read(root)
    events = [i["source"]["frigate_event"] for i in coco["images"] if "source" in i]
    assert len(events) == len(set(events)) == 13
    assert verified_part(coco) == verified_part(before)


KILL_SCRIPT = """
import sys
from camtune.core import config
from camtune.steps.ingest import frigate as fr
params = config.load(sys.argv[1], {"data.user_dataset": sys.argv[2]})
fp = params.ingest.frigate
c = fr.FrigateClient(sys.argv[3], retries=0)
fr.import_frigate(c, sys.argv[2], fr.ImportOptions(
    user_id=params.user.id, label_names=tuple(params.labels.names),
    attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
    page_size=50, batch_size=2, progress=False))
"""


def test_kill_9_mid_import_then_resume(tmp_path, params):
    from camtune.core.config import ROOT

    root = tmp_path / "user"
    before = write_verified_dataset(root, params)
    state = FrigateState(slow_always=0.05)
    with FrigateServer(state) as srv:
        populate(srv, 40)
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ROOT / "params.yaml"), str(root), srv.url],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.time() + 60
        while time.time() < deadline:
            if len(read(root)["images"]) >= 5:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid = read(root)  # a complete, valid JSON: replaced atomically
        assert 5 <= len(mid["images"]) < 41
        state.slow_always = 0.0
        fr.import_frigate(client(srv.url), root, options(params))
    coco = read(root)
    events = [i["source"]["frigate_event"] for i in coco["images"] if "source" in i]
    assert len(events) == len(set(events)) == 40
    assert verified_part(coco) == verified_part(before)
    files = {i["file_name"] for i in coco["images"]}
    assert all((root / f).is_file() for f in files)


def test_filters_are_sent(tmp_path, params):
    with FrigateServer() as srv:
        populate(srv, 8)
        srv.add(make_event(9, end_time=None), snapshot_bytes(64, 36, "WEBP"))  # still tracked
        c = client(srv.url)
        evs = list(c.events(after=fr.to_unix("2026-09-01"), cameras=["front"], labels=["person", "car"],
                            page_size=100))
        q = srv.state.requests[-1]
    assert all(e["end_time"] is not None for e in evs)
    assert {e["camera"] for e in evs} == {"front"} and {e["label"] for e in evs} <= {"person", "car"}
    assert "in_progress=0" in q and "cameras=front" in q and "labels=person%2Ccar" in q and "has_snapshot=1" in q and "after=" in q
    assert fr.to_unix("2026-10-01") == 1790812800.0
    with pytest.raises(fr.IngestError, match="expected a date"):
        fr.to_unix("yesterday")
    json.dumps(evs)
