"""One decoder with one set of limits (issue 28, items 2 and 3): a bad Frigate snapshot is a
finding of that event, not a failed import; a huge header is refused before any pixel is decoded."""
from __future__ import annotations

import json

import pytest
from tests.support.frigate import FrigateServer, make_event, snapshot_bytes

from camtune.core import config
from camtune.steps.ingest import frigate as fr
from camtune.model import images
from camtune.model.images import ImageRefused, Limits

from .hostile_images import png_bytes, png_claiming, truncated_png


def test_shared_decoder_limits(tmp_path):
    assert images.decode_rgb(png_bytes(8, 6)).shape == (6, 8, 3)
    with pytest.raises(ImageRefused, match=r"13000x13000 = 169000000 pixels exceeds validate.max_pixels") as e:
        images.decode_rgb(png_claiming(13000, 13000), Limits(max_pixels=40_000_000), "x.png")
    assert e.value.code == "PIXEL_BOMB"
    with pytest.raises(ImageRefused, match="cannot be decoded") as e:
        images.decode_rgb(truncated_png(), what="t.png")
    assert e.value.code == "FILE_UNDECODABLE"
    with pytest.raises(ImageRefused, match="max_image_bytes=100") as e:
        images.decode_rgb(png_bytes(64, 64), Limits(max_bytes=100))
    f = tmp_path / "big.png"
    f.write_bytes(png_claiming(8000, 8000))
    with pytest.raises(ImageRefused, match=r"big.png: 8000x8000"):
        images.load_rgb(f, Limits(max_pixels=1_000_000))
    with pytest.raises(ImageRefused, match="image file not found"):
        images.load_rgb(tmp_path / "none.png")


def test_frigate_bad_snapshots_are_findings_and_not_retried(tmp_path):
    params = config.load(config.ROOT / "params.yaml", {"data.user_dataset": str(tmp_path / "user")})
    fp = params.ingest.frigate
    ledger = tmp_path / "ingest" / "frigate_refused.json"
    opts = fr.ImportOptions(user_id=params.user.id, label_names=tuple(params.labels.names),
                            attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
                            batch_size=10, progress=False, limits=Limits.of(params.validate),
                            refused_path=str(ledger))
    with FrigateServer() as srv:
        good = srv.add(make_event(1), snapshot_bytes(64, 36, "WEBP"))
        trunc = srv.add(make_event(2), truncated_png(), "png")
        bomb = srv.add(make_event(3), png_claiming(13000, 13000), "png")
        good2 = srv.add(make_event(4), snapshot_bytes(64, 36, "WEBP"))
        counts = fr.import_frigate(fr.FrigateClient(srv.url, retries=0), tmp_path / "user", opts)
        refused = {r["event"]: r for r in counts["refused"]}
        assert counts["imported"] == 2 and set(refused) == {trunc["id"], bomb["id"]}
        assert refused[bomb["id"]]["file"] == f"images/frigate/front/{bomb['id']}.jpg"
        assert "169000000 pixels exceeds validate.max_pixels=40000000" in refused[bomb["id"]]["reason"]
        assert "not a readable image" in refused[trunc["id"]]["reason"] or \
            "cannot be decoded" in refused[trunc["id"]]["reason"]
        coco = json.loads((tmp_path / "user" / "annotations.json").read_text())
        assert {i["source"]["frigate_event"] for i in coco["images"]} == {good["id"], good2["id"]}
        assert set(json.loads(ledger.read_text())["events"]) == {trunc["id"], bomb["id"]}
        on_disk = {str(p.relative_to(tmp_path / "user")) for p in (tmp_path / "user" / "images" / "frigate").rglob("*")
                   if p.is_file()}
        assert on_disk == {i["file_name"] for i in coco["images"] if "source" in i}   # no file without its record
        # a re-run does not ask for them again
        srv.state.requests.clear()
        again = fr.import_frigate(fr.FrigateClient(srv.url, retries=0), tmp_path / "user", opts)
        assert again["refused_before"] == 2 and again["refused"] == [] and again["imported"] == 0
        assert not [r for r in srv.state.requests if "snapshot-clean" in r]


def test_refusals_survive_pickling():
    """Task runners (dask) pickle a worker's exception: message and rule code must arrive."""
    import pickle

    from camtune.core.dataset import UnsafePath

    for exc in (ImageRefused("x.png: too big", "PIXEL_BOMB"), UnsafePath("y: absolute", "FILE_ABSOLUTE"),
                fr.SnapshotRefused("event e: 500", permanent=False)):
        back = pickle.loads(pickle.dumps(exc))
        assert (type(back), str(back)) == (type(exc), str(exc))
        assert getattr(back, "code", None) == getattr(exc, "code", None)
        assert getattr(back, "permanent", None) == getattr(exc, "permanent", None)
