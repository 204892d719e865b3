"""A column dict (numpy arrays / object arrays) while a year is being generated."""

from __future__ import annotations

import numpy as np

Frame = dict[str, np.ndarray]


def take(frame: Frame, idx: np.ndarray) -> Frame:
    return {k: v[idx] for k, v in frame.items()}


def concat(a: Frame, b: Frame) -> Frame:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def obj(values: list) -> np.ndarray:
    """An object array of lists/strings (np.array would try to broadcast lists)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
