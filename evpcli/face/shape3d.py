"""The 3D landmark model.

:func:`generic_mean_shape` is a generic 68-point 3D face (iBUG order), credited to the MIT-licensed ``head-pose``
package (DewMaple/head_pose, ``models/model_3D_68.txt``); it ships in ``evpcli/data/mean_face_68.txt``.
Axes are OpenCV camera axes: x to the image right, y down, z away from the camera (the nose tip has the
smallest z). Units are about millimetres.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np


@lru_cache(maxsize=1)
def _load_generic() -> np.ndarray:
    text = resources.files("evpcli").joinpath("data/mean_face_68.txt").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    values = np.array([float(ln) for ln in lines], np.float64)
    return values.reshape(3, 68).T


def generic_mean_shape(centred: bool = True) -> np.ndarray:
    """(68, 3) float64 generic face; ``centred`` subtracts the mean point."""
    shape = _load_generic().copy()
    return shape - shape.mean(axis=0) if centred else shape
