"""Counting objects, not pixels: each predicted object matched to at most one true instance.

A pixel score (:mod:`unet_helpers.metrics`) does not say whether two touching nuclei came out as one blob.
:func:`match_instances` counts objects: each predicted object (an 8-connected component of a predicted
mask, or a label of a label image) is matched to at most one true instance, and the other way round, when
their IoU is at least 0.5; matches are true positives, unmatched predictions false positives, unmatched
true instances false negatives. :func:`instance_scores` sums these counts over a set of images, then
gives precision, recall and F1.

A module of its own, apart from the pixel metrics: it scores connected objects against instance label
images (notebook 07, ``instances.read_instances``), where :mod:`unet_helpers.metrics` scores class maps
pixel by pixel; the two share only the rule that a probability counts as object where ``p > 0.5``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np

from unet_helpers.errors import UnetTutorialError
from unet_helpers.metrics import drop_channel


class InstanceCounts(NamedTuple):
    """Objects counted by :func:`match_instances`: matched, predicted but unmatched, true but unmatched."""

    true_positives: int
    false_positives: int
    false_negatives: int


class InstanceScores(NamedTuple):
    """Object precision, recall and F1, and the counts they come from (:func:`instance_scores`)."""

    precision: float
    recall: float
    f1: float
    counts: InstanceCounts


def _instance_labels(array: Any, role: str) -> np.ndarray:
    """One image's objects as int64 (H, W) labels, 0 = background.

    Probabilities (fractions) become a mask by ``p > 0.5``, as the pixel metrics decide; a 0/1 mask's
    objects are its 8-connected components; whole numbers above 1 are labels, one object per number.
    """
    array = drop_channel(np.asarray(array))
    if array.ndim != 2:
        raise UnetTutorialError(
            f"{role} has shape {array.shape}: pass one image, (H, W) or (H, W, 1), per true instance image."
        )
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        array = array > 0.5
    if array.size and array.min() < 0:
        raise UnetTutorialError(f"{role} holds negative values: labels are 0 (background) and 1..N.")
    if array.dtype == bool or (array.size and array.max() <= 1):
        return cv2.connectedComponents(array.astype(np.uint8), connectivity=8)[1].astype(np.int64)
    return array.astype(np.int64)


def match_instances(true_instances: Any, predicted: Any, *, iou_threshold: float = 0.5) -> InstanceCounts:
    """Count the true instances of one image that a prediction finds, one to one.

    A predicted object and a true instance match when their IoU (shared pixels / pixels of either) is at
    least ``iou_threshold``; each object matches at most once, pairs taken in order of descending IoU (at
    equal IoU, lower true label first, then lower predicted label). Above 0.5 the matching is unique:
    IoU > 0.5 means the two share more than half of each one's pixels, and no other object, disjoint from
    the first, can share more than half too. At exactly 0.5 one object can reach two: a prediction that
    merges two equal nuclei has IoU 0.5 with each, matches one, and the other counts as missed.

    Args:
        true_instances: (H, W) or (H, W, 1) labels, 0 = background, 1..N one number per instance.
        predicted: the same shape: a 0/1 (or bool) mask, whose 8-connected components are the objects;
            sigmoid probabilities (fractions; object where ``p > 0.5``); or a label image (whole numbers,
            one object per number; a label image whose only label is 1 is read as a mask).
        iou_threshold: the IoU a match needs, in (0, 1]; 0.5 is the usual choice.

    Returns:
        :class:`InstanceCounts` ``(true_positives, false_positives, false_negatives)``.

    Raises:
        UnetTutorialError: shapes that differ, or a threshold out of range.
    """
    if not 0 < iou_threshold <= 1:
        raise UnetTutorialError(f"iou_threshold={iou_threshold}: give a number in (0, 1], usually 0.5.")
    true = _instance_labels(true_instances, "true_instances")
    found = _instance_labels(predicted, "predicted")
    if true.shape != found.shape:
        raise UnetTutorialError(
            f"true_instances {np.shape(true_instances)} and predicted {np.shape(predicted)} differ in size."
        )
    true_ids, true_index, true_areas = np.unique(true, return_inverse=True, return_counts=True)
    found_ids, found_index, found_areas = np.unique(found, return_inverse=True, return_counts=True)
    # Shared pixels of every (true, predicted) pair, background (id 0, always first if present) included.
    pairs = true_index.ravel() * found_ids.size + found_index.ravel()
    shared = np.bincount(pairs, minlength=true_ids.size * found_ids.size).reshape(true_ids.size, -1)
    union = true_areas[:, None] + found_areas[None, :] - shared
    iou = np.where(shared > 0, shared / np.maximum(union, 1), 0.0)
    iou[true_ids == 0, :] = 0.0  # background is no object
    iou[:, found_ids == 0] = 0.0
    matched_true, matched_found = set(), set()
    rows, columns = np.nonzero(iou >= iou_threshold)
    for row, column in sorted(zip(rows, columns, strict=True), key=lambda rc: (-iou[rc], rc[0], rc[1])):
        if row not in matched_true and column not in matched_found:
            matched_true.add(row)
            matched_found.add(column)
    true_count, found_count = int(np.count_nonzero(true_ids)), int(np.count_nonzero(found_ids))
    matches = len(matched_true)
    return InstanceCounts(matches, found_count - matches, true_count - matches)


def instance_scores(true_instances: Any, predicted: Any, *, iou_threshold: float = 0.5) -> InstanceScores:
    """Object-level precision, recall and F1 over a set of images, from counts pooled over all of them.

    The counts of :func:`match_instances` are summed over the images first, so every nucleus counts
    once, whichever image it is in. Then ``precision = TP / (TP + FP)`` (the share of predicted objects
    that are nuclei), ``recall = TP / (TP + FN)`` (the share of nuclei found) and ``F1 = 2 TP / (2 TP +
    FP + FN)``. A ratio with nothing to count (0 / 0) is 1: no predicted object means no false claim
    (precision 1), no true instance means nothing missed (recall 1), neither means F1 1 (nothing to find,
    nothing found, as for the pixel scores).

    Args:
        true_instances: (N, H, W) or (N, H, W, 1) labels, or a list of (H, W) label images (sizes may
            differ).
        predicted: the predictions in the same layout, each as :func:`match_instances` takes it (a 0/1
            mask, probabilities, or labels), e.g. a model's (N, H, W, 1) sigmoid output.
        iou_threshold: as for :func:`match_instances`.

    Returns:
        :class:`InstanceScores` ``(precision, recall, f1, counts)``.
    """
    if len(true_instances) != len(predicted):
        raise UnetTutorialError(
            f"{len(true_instances)} true label images but {len(predicted)} predictions: give one each."
        )
    counts = np.zeros(3, np.int64)
    for true, found in zip(true_instances, predicted, strict=True):
        counts += match_instances(true, found, iou_threshold=iou_threshold)
    true_positives, false_positives, false_negatives = (int(count) for count in counts)

    def ratio(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else 1.0

    return InstanceScores(
        precision=ratio(true_positives, true_positives + false_positives),
        recall=ratio(true_positives, true_positives + false_negatives),
        f1=ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives),
        counts=InstanceCounts(true_positives, false_positives, false_negatives),
    )
