"""Attribute containment, vectorised over every (attribute, parent) pair of an image."""
from __future__ import annotations

import numpy as np
import pandas as pd

from camtune.steps.validate.geometry import check_containment, contained_fraction

PARENTS = {"face": ["person"], "license_plate": ["car"], "ups": ["car"]}


def anns(rows):
    return pd.DataFrame(rows, columns=["id", "image_id", "label", "x", "y", "w", "h"]).astype(
        {"x": float, "y": float, "w": float, "h": float})


def test_contained_fraction():
    child = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [50, 50, 2, 2]], float)
    parent = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert contained_fraction(child, parent).tolist() == [1.0, 0.25, 0.0]


def test_attributes_inside_a_parent_pass():
    a = anns([(1, 1, "person", 0, 0, 20, 40), (2, 1, "face", 5, 2, 8, 8),
              (3, 1, "car", 30, 10, 30, 20), (4, 1, "license_plate", 40, 25, 10, 4),
              (5, 1, "ups", 31, 11, 5, 5), (6, 1, "dog", 0, 0, 5, 5)])
    assert check_containment(a, PARENTS, 0.1) == []


def test_orphan_face_and_logo_outside_car_fail():
    a = anns([(1, 1, "face", 5, 2, 8, 8),                          # no person in image 1
              (2, 2, "car", 30, 10, 30, 20), (3, 2, "ups", 0, 0, 5, 5),  # logo away from the car
              (4, 3, "person", 0, 0, 10, 10), (5, 4, "face", 1, 1, 4, 4)])  # person is in another image
    got = {(f.rule, f.image_id, f.annotation_id) for f in check_containment(a, PARENTS, 0.1)}
    assert got == {("ORPHAN_ATTRIBUTE", 1, 1), ("ORPHAN_ATTRIBUTE", 2, 3), ("ORPHAN_ATTRIBUTE", 4, 5)}


def test_a_parent_of_the_wrong_label_does_not_count():
    a = anns([(1, 1, "car", 0, 0, 50, 50), (2, 1, "face", 5, 5, 5, 5)])
    [f] = check_containment(a, PARENTS, 0.1)
    assert f.annotation_id == 2 and "person" in f.message


def test_tolerance_is_the_fraction_allowed_outside():
    # the face sticks 20% out of the person
    a = anns([(1, 1, "person", 0, 0, 10, 10), (2, 1, "face", 2, 0, 10, 5)])
    assert [f.annotation_id for f in check_containment(a, PARENTS, 0.1)] == [2]
    assert check_containment(a, PARENTS, 0.25) == []


def test_any_one_of_several_parents_suffices():
    a = anns([(1, 1, "person", 0, 0, 10, 10), (2, 1, "person", 50, 0, 10, 10), (3, 1, "face", 52, 2, 4, 4)])
    assert check_containment(a, PARENTS, 0.0) == []


def test_broken_boxes_are_left_to_their_own_rules():
    a = anns([(1, 1, "face", np.nan, 0, 5, 5), (2, 1, "face", 0, 0, -5, 5)])
    assert check_containment(a, PARENTS, 0.1) == []
