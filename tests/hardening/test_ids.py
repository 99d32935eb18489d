"""Ids are matched whole: `$` alone matches before a trailing newline (issue 28, item 12)."""
from __future__ import annotations

import pytest

from camtune.core import config
from camtune.steps.evaluate.thresholds import _key
from camtune.contracts.registry import RegistryError, check_segment


@pytest.mark.parametrize("bad", ["front\n", "alice\n", "a\nb", "\nfront", ""])
def test_safe_segment_matches_whole(bad):
    assert config.SAFE_SEGMENT.match(bad) is None
    with pytest.raises(RegistryError, match="not a safe path segment"):
        check_segment(bad, "user id")
    with pytest.raises(config.ConfigError):
        config.load(config.ROOT / "params.yaml", {"user.id": bad})


def test_plain_yaml_key_matches_whole():
    assert _key("person") == "person"
    assert _key("person\n") == '"person\\n"'      # quoted, never a plain key with a line break


def test_frigate_camera_with_newline_is_a_bad_event(tmp_path):
    from tests.support.frigate import FrigateServer, make_event, snapshot_bytes

    from camtune.steps.ingest import frigate as fr

    params = config.load(config.ROOT / "params.yaml", {"data.user_dataset": str(tmp_path / "user")})
    fp = params.ingest.frigate
    opts = fr.ImportOptions(user_id=params.user.id, label_names=tuple(params.labels.names),
                            attribute_parents=dict(params.labels.attribute_parents), label_map=dict(fp.label_map),
                            progress=False)
    with FrigateServer() as srv:
        srv.add(make_event(1, camera="front\n"), snapshot_bytes(32, 18, "WEBP"))
        counts = fr.import_frigate(fr.FrigateClient(srv.url, retries=0), tmp_path / "user", opts)
    assert counts["imported"] == 0 and "unusable id or camera name 'front\\n'" in counts["bad_events"][0]
    assert not (tmp_path / "user" / "images" / "frigate" / "front\n").exists()
