"""Emotion expressions: FACS-style prototypes as 3D landmark offsets at full intensity."""

from __future__ import annotations

import numpy as np

from evpcli.config import EMOTIONS
from evpcli.errors import EvpError
from evpcli.face.parts import (BROWS, LEFT_BROW, LOWER_EYELIDS, LOWER_OUTER_LIP, MIRROR, NOSE_BASE, RIGHT_BROW,
                               UPPER_EYELIDS, UPPER_INNER_LIP, UPPER_OUTER_LIP, side_of_midline)

EXPRESSION_GAIN = 1.35  # all prototypes below, tuned by eye on the contact sheet


def _brow_inner_weight() -> np.ndarray:
    w = np.zeros(68)
    w[RIGHT_BROW] = [0.0, 0.25, 0.5, 0.8, 1.0]
    w[LEFT_BROW] = [1.0, 0.8, 0.5, 0.25, 0.0]
    return w


def expression_offsets(emotion: str, shape: np.ndarray) -> np.ndarray:
    """(68, 3) float64 offsets (shape units, ~mm; y down) of an emotion's prototype at full intensity.

    FACS-style: happy AU6+12 (cheeks raised, lip corners up and back), sad AU1+4+15+17 (inner brows up,
    corners down), angry AU4+5+7+23 (brows down and together, lids tight, lips pressed), surprised AU1+2+5
    (brows up, eyes wide; the jaw drop is in the mouth tracks), fear AU1+2+4+5+20 (brows up and together,
    lips stretched), disgusted AU9+10+4 (nose wrinkled, upper lip raised), contempt AU14 on one side.
    """
    d = np.zeros((68, 3))
    side = side_of_midline(shape)
    wi = _brow_inner_weight()[BROWS]  # (10,) 1 at the inner brow ends
    if emotion == "happy":
        d[[48, 54], 1] -= 4.5
        d[[48, 54], 0] += 4.0 * side[[48, 54]]
        d[[60, 64], 1] -= 4.0
        d[[60, 64], 0] += 3.5 * side[[60, 64]]
        d[[49, 53, 59, 55, 61, 63, 65, 67], 1] -= 2.0
        d[[49, 53, 59, 55, 61, 63, 65, 67], 0] += 1.8 * side[[49, 53, 59, 55, 61, 63, 65, 67]]
        d[[50, 52], 1] -= 0.8
        d[LOWER_EYELIDS, 1] -= 2.0  # cheeks push the lower lids up (AU6)
        d[[36, 45], 1] -= 0.6
        d[[2, 3, 4, 12, 13, 14], 0] += 1.2 * side[[2, 3, 4, 12, 13, 14]]
        d[[2, 3, 4, 12, 13, 14], 1] -= 1.2
        d[[31, 35], 0] += 0.8 * side[[31, 35]]
        d[BROWS, 1] -= 0.8
    elif emotion == "sad":
        d[BROWS, 1] += -6.0 * wi + 1.8 * (1 - wi)
        d[BROWS, 0] -= 1.5 * wi * side[BROWS]
        d[UPPER_EYELIDS, 1] += 1.8
        d[[48, 54], 1] += 5.5
        d[[48, 54], 0] -= 1.0 * side[[48, 54]]
        d[[60, 64], 1] += 4.5
        d[[60, 64], 0] -= 1.0 * side[[60, 64]]
        d[[59, 55, 49, 53], 1] += 1.5
        d[[57, 56, 58, 66], 1] -= 1.0  # chin raiser pushes the lower lip up
        d[[7, 8, 9], 1] -= 0.8
    elif emotion == "angry":
        d[BROWS, 1] += 5.0 * wi + 2.5 * (1 - wi)
        d[BROWS, 0] -= 3.5 * wi * side[BROWS]
        d[UPPER_EYELIDS, 1] -= 1.2
        d[LOWER_EYELIDS, 1] -= 1.4
        d[UPPER_OUTER_LIP, 1] += 1.5  # lips pressed and narrowed
        d[LOWER_OUTER_LIP, 1] -= 1.5
        d[[48, 54, 60, 64], 0] -= 2.0 * side[[48, 54, 60, 64]]
        d[[48, 54, 60, 64], 1] += 1.5  # pressed lips turn down a little at the corners
        d[[31, 35], 0] += 1.5 * side[[31, 35]]
        d[[31, 35], 1] -= 0.8
    elif emotion == "surprised":
        d[BROWS, 1] -= 7.0 * wi + 5.5 * (1 - wi)
        d[UPPER_EYELIDS, 1] -= 3.0
        d[LOWER_EYELIDS, 1] += 0.8
    elif emotion == "fear":
        d[BROWS, 1] += -6.0 * wi - 3.0 * (1 - wi)
        d[BROWS, 0] -= 2.0 * wi * side[BROWS]
        d[UPPER_EYELIDS, 1] -= 3.2
        d[LOWER_EYELIDS, 1] -= 0.6
        d[[48, 54, 60, 64], 0] += 3.5 * side[[48, 54, 60, 64]]
        d[[48, 54, 60, 64], 1] += 1.5
        d[[49, 53, 55, 59], 0] += 1.5 * side[[49, 53, 55, 59]]
    elif emotion == "disgusted":
        d[NOSE_BASE, 1] -= 2.5
        d[[31, 35], 0] += 1.2 * side[[31, 35]]
        d[[29, 30], 1] -= 1.0
        d[UPPER_OUTER_LIP, 1] -= 3.5
        d[51, 1] -= 0.5
        d[UPPER_INNER_LIP, 1] -= 3.0
        d[[48, 54], 1] += 1.5
        d[[48, 54], 0] -= 0.8 * side[[48, 54]]
        d[LOWER_OUTER_LIP, 1] += 0.5
        d[BROWS, 1] += 3.5 * wi + 1.2 * (1 - wi)
        d[BROWS, 0] -= 2.0 * wi * side[BROWS]
        d[LOWER_EYELIDS, 1] -= 2.0
        d[UPPER_EYELIDS, 1] += 1.0
    elif emotion == "contempt":  # unilateral: the image-right corner
        right = side > 0
        for idx, dy, dx in ((54, -3.5, 3.5), (64, -3.0, 3.0), (53, -1.6, 1.2), (55, -1.5, 1.2), (63, -1.5, 1.0),
                            (65, -1.2, 1.0), (52, -0.6, 0.4), (56, -0.6, 0.4), (12, -1.0, 0.8), (13, -0.8, 0.6)):
            j = idx if right[idx] else MIRROR[idx]
            d[j, 1] += dy
            d[j, 0] += dx * side[j]
        d[[46, 47], 1] -= 1.0
        d[RIGHT_BROW, 1] -= 1.5  # the other brow lifts a little
    elif emotion != "neutral":
        raise EvpError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    return EXPRESSION_GAIN * d
