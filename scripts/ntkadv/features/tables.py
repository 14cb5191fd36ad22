"""Tables of the features stage (pandas; no jax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ntkadv.features.rescore import FeatureScores


def scores_frame(scores: FeatureScores, eigvals: np.ndarray, classes: Sequence[Any]):
    """One row per scored feature: eigen-index, λ, usefulness, robustness, per class.

    Returns:
        pandas DataFrame with columns eigen_index, eigval, usefulness, robustness,
        usefulness_class_<c>, robustness_class_<c> for every class label c.
    """
    import pandas as pd

    cols: dict[str, Any] = {
        "eigen_index": scores.indices,
        "eigval": np.asarray(eigvals)[scores.indices],
        "usefulness": scores.usefulness,
        "robustness": scores.robustness,
    }
    for j, c in enumerate(classes):
        cols[f"usefulness_class_{c}"] = scores.usefulness_per_class[:, j]
    for j, c in enumerate(classes):
        cols[f"robustness_class_{c}"] = scores.robustness_per_class[:, j]
    return pd.DataFrame(cols)
