"""instance_metrics: objects counted one to one against hand-made label images."""

import numpy as np
import pytest

from unet_helpers import instance_metrics
from unet_helpers.errors import UnetTutorialError


def square(labels, top, left, size, label):
    labels[top : top + size, left : left + size] = label
    return labels


TWO_NUCLEI = square(square(np.zeros((12, 12), np.int32), 1, 1, 4, 1), 1, 5, 4, 2)  # touching: 1-4, 5-8


def counts(true, predicted, **kwargs):
    return tuple(instance_metrics.match_instances(true, predicted, **kwargs))


def test_a_merged_pair_counts_as_one_match_and_one_miss():
    merged = (TWO_NUCLEI > 0).astype(np.uint8)  # one component: IoU 16 / 32 = 0.5 with each nucleus
    assert counts(TWO_NUCLEI, merged) == (1, 0, 1)
    # Just above 0.5, neither matches: the prediction is then a false positive, both nuclei missed.
    assert counts(TWO_NUCLEI, merged, iou_threshold=0.51) == (0, 1, 2)


def test_instance_counts_on_hand_made_masks():
    separated = TWO_NUCLEI.copy()
    separated[:, 5] = 0  # a line between them: two components
    assert counts(TWO_NUCLEI, separated > 0) == (2, 0, 0)  # IoU 12 / 16 for the second: a match
    assert counts(TWO_NUCLEI, TWO_NUCLEI) == (2, 0, 0)  # a label image: each number one object
    missed = (TWO_NUCLEI == 1).astype(np.uint8)
    assert counts(TWO_NUCLEI, missed) == (1, 0, 1)
    spurious = square((separated > 0).astype(np.uint8), 10, 10, 2, 1)
    assert counts(TWO_NUCLEI, spurious) == (2, 1, 0)
    split = np.zeros((12, 12), np.uint8)
    split[1:5, 1:3] = split[1:5, 4:5] = 1  # nucleus 1 in two pieces (IoU 8/16 and 4/16), nucleus 2 lost
    assert counts(TWO_NUCLEI, split) == (1, 1, 1)
    assert counts(np.zeros((12, 12)), separated > 0) == (0, 2, 0)  # empty truth
    assert counts(TWO_NUCLEI, np.zeros((12, 12))) == (0, 0, 2)  # empty prediction
    assert counts(np.zeros((12, 12)), np.zeros((12, 12))) == (0, 0, 0)
    # The background is no object, however much of it a prediction covers, or a nucleus does.
    assert counts(np.zeros((12, 12)), np.ones((12, 12))) == (0, 1, 0)
    assert counts(np.ones((12, 12)), np.zeros((12, 12))) == (0, 0, 1)
    diagonal = np.eye(12, dtype=np.int32)  # one nucleus, its pixels 8-connected only
    assert counts(diagonal, diagonal.astype(bool)) == (1, 0, 0)
    probabilities = np.where(separated > 0, 0.9, 0.2)[..., np.newaxis]  # (H, W, 1) sigmoid output
    assert counts(TWO_NUCLEI[..., np.newaxis], probabilities) == (2, 0, 0)


def test_instance_scores_pool_counts_over_images_and_define_zero_over_zero():
    merged = (TWO_NUCLEI > 0).astype(np.float32)
    scores = instance_metrics.instance_scores([TWO_NUCLEI, TWO_NUCLEI], [TWO_NUCLEI, merged])
    assert tuple(scores.counts) == (3, 0, 1)
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((1.0, 3 / 4, 6 / 7))
    batch_scores = instance_metrics.instance_scores(
        np.stack([TWO_NUCLEI] * 2)[..., None], np.stack([TWO_NUCLEI, merged])
    )
    assert batch_scores == scores
    nothing_predicted = instance_metrics.instance_scores([TWO_NUCLEI], [np.zeros((12, 12))])
    assert (nothing_predicted.precision, nothing_predicted.recall, nothing_predicted.f1) == (1.0, 0.0, 0.0)
    nothing_there = instance_metrics.instance_scores([np.zeros((12, 12))], [np.zeros((12, 12))])
    assert (nothing_there.precision, nothing_there.recall, nothing_there.f1) == (1.0, 1.0, 1.0)


def test_instance_counting_mistakes_are_reported_in_one_line():
    with pytest.raises(UnetTutorialError, match="differ in size"):
        instance_metrics.match_instances(TWO_NUCLEI, np.zeros((12, 11)))
    with pytest.raises(UnetTutorialError, match="iou_threshold=0"):
        instance_metrics.match_instances(TWO_NUCLEI, TWO_NUCLEI, iou_threshold=0)
    with pytest.raises(UnetTutorialError, match="one each"):
        instance_metrics.instance_scores([TWO_NUCLEI], [])
