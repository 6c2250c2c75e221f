"""Small masks and predictions that more than one test file scores by hand."""

import numpy as np


def pitfall_batch():
    """pitfalls.md: image 0 has 8 object pixels, predicted perfectly; image 1 is empty, 1 false positive."""
    y_true = np.zeros((2, 4, 4, 1), np.float32)
    y_true[0, :2] = 1
    y_pred = y_true.copy()
    y_pred[1, 0, 0, 0] = 1
    return y_true, y_pred


def ranking_case():
    """Five 4x4 images whose Dice is counted by hand (binary, masks (N, H, W, 1))."""
    masks = np.zeros((5, 4, 4, 1), np.float32)
    predictions = np.zeros_like(masks)
    masks[[0, 1, 4], 1:3, 1:3] = 1
    predictions[0, 1:3, 1:3] = 1  # perfect: 1
    predictions[1, 1, 1:3] = 1  # 2 of 4 found: 2*2 / (2*2 + 0 + 2) = 2/3
    # image 2: nothing in the truth, nothing predicted: 1 by the metrics' convention
    predictions[3, 0, 0] = 1  # nothing in the truth, 1 false positive: 0
    predictions[4, 1:3, 2:4] = 1  # shifted: TP 2, FP 2, FN 2: 4 / 8
    return masks, predictions, [1.0, 2 / 3, 1.0, 0.0, 0.5]


def threshold_case():
    """8x8: object pixels at 0.8 and 0.35 (4 each), background at 0.25 (4) and 0.1 (52)."""
    mask = np.zeros((8, 8), np.float32)
    probabilities = np.full((8, 8), 0.1, np.float32)
    mask[0, :8] = 1
    probabilities[0, :4], probabilities[0, 4:] = 0.8, 0.35
    probabilities[1, :4] = 0.25
    return mask, probabilities
