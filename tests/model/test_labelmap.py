"""labelmap.txt: one writer, one reader (names by index, StepFailed naming the file), one label check."""
from __future__ import annotations

import pytest

from camtune.core.errors import StepFailed
from camtune.model.labelmap import check_labels, labelmap_text, parse_labelmap, read_labelmap

LABELS = ["person", "face", "car"]


def test_written_map_reads_back_as_index_space_label_zero_based(tmp_path):
    assert labelmap_text(["person", "car"]) == "0 person\n1 car\n"
    (tmp_path / "labelmap.txt").write_text(labelmap_text(LABELS))
    assert read_labelmap(tmp_path / "labelmap.txt") == LABELS


def test_reads_frigate_and_bare_formats():
    assert parse_labelmap("0 person\n1 car\n") == ["person", "car"]
    assert parse_labelmap("person\ncar\n") == ["person", "car"]
    assert parse_labelmap("1 car\n0 person\n\n") == ["person", "car"]
    assert parse_labelmap("0 traffic light\n") == ["traffic light"]


@pytest.mark.parametrize("text, message", [
    ("0 person\n2 car\n", r"indexes must be 0..1"),
    ("0 person\n0 car\n", r"line 2: index 0 appears twice"),
    ("\n\n", "empty label map"),
])
def test_refuses_ambiguous_maps_naming_the_file(tmp_path, text, message):
    (tmp_path / "labelmap.txt").write_text(text)
    with pytest.raises(StepFailed, match=rf"labelmap.txt: {message}"):
        read_labelmap(tmp_path / "labelmap.txt")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(StepFailed, match=r"nope/labelmap.txt: label map not found"):
        read_labelmap(tmp_path / "nope/labelmap.txt")


def test_label_map_mismatch_names_model_and_difference():
    check_labels(LABELS, LABELS, "m")
    with pytest.raises(StepFailed, match=r"model_dir.*missing \['car'\].*unknown \['dog'\]"):
        check_labels(["person", "face", "dog"], LABELS, "model_dir")
    with pytest.raises(StepFailed, match="different order"):
        check_labels(["face", "person", "car"], LABELS, "model_dir")
