"""Small masks and predictions that more than one test file scores by hand."""

import numpy as np


def pitfall_batch():
    """pitfalls.md: image 0 has 8 object pixels, predicted perfectly; image 1 is empty, 1 false positive."""
    y_true = np.zeros((2, 4, 4, 1), np.float32)
    y_true[0, :2] = 1
    y_pred = y_true.copy()
    y_pred[1, 0, 0, 0] = 1
    return y_true, y_pred
