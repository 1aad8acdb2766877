"""Speech stays readable in every emotion: the mouth opens at least as far as the neutral command would.

The audio-to-landmark network learned emotional speech as the corpus shows it: sad speech is spoken with a
smaller mouth (its commanded inner-lip opening varies 0.050-0.057 of the inter-ocular distance over real speech,
against 0.057-0.065 for neutral and 0.076-0.083 for happy), and on a real face the render delivers 0.6-0.7 of a
commanded opening as dlib reads it, so sad renders followed the speech least (lip sync r 0.55-0.79 against
0.74-0.89). :func:`keep_speech_opening` opens each frame's mouth to the neutral command's opening for the same
speech where the emotion's is smaller: the lower lip (inner and outer) and the chin move down by the difference,
the corners and everything above the mouth keep the emotion's shape (a sad mouth's lowered corners stay).
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import JAW, LOWER_INNER_LIP, LOWER_OUTER_LIP, mouth_opening

CHIN_SHARE = np.array([0.25, 0.5, 0.8, 1.0, 0.8, 0.5, 0.25])
"""How far jaw points 5-11 follow the lower lip down (the chin all the way, the jaw's sides less)."""
CHIN = JAW[5:12]


def keep_speech_opening(landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(T, 68, 2) ``landmarks`` (canonical frame, y down) with each frame's inner-lip opening raised to that of
    ``neutral`` (T, 68, 2), the neutral command for the same speech, where it is smaller (module docstring)."""
    lm = np.array(landmarks, np.float32, copy=True)
    gap = np.clip(mouth_opening(np.asarray(neutral, np.float64)) - mouth_opening(lm.astype(np.float64)), 0.0, None)
    gap = gap.astype(np.float32)
    lm[:, LOWER_INNER_LIP, 1] += gap[:, None]
    lm[:, LOWER_OUTER_LIP, 1] += gap[:, None]
    lm[:, CHIN, 1] += gap[:, None] * CHIN_SHARE[None].astype(np.float32)
    return lm
