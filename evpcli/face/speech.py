"""Speech stays readable in every emotion: the mouth opens at least as far as the neutral command would.

The audio-to-landmark network learned emotional speech as the corpus shows it: sad speech is spoken with a
smaller mouth (its commanded inner-lip opening varies 0.050-0.057 of the inter-ocular distance over real speech,
against 0.057-0.065 for neutral and 0.076-0.083 for happy), and on a real face the render delivers 0.6-0.7 of a
commanded opening as dlib reads it, so sad renders followed the speech least (lip sync r 0.55-0.79 against
0.74-0.89). :func:`keep_speech_opening` opens each frame's mouth to the neutral command's opening for the same
speech where the emotion's is smaller: the lower lip (inner and outer) and the chin move down by the difference,
the corners and everything above the mouth keep the emotion's shape (a sad mouth's lowered corners stay).

:func:`speaking_reference`: the face the network reads has its mouth at least :data:`SPEAKING_OPENING` open. The
network's training references are the mean of speaking frames (mouth half open) and it predicts speech as a
displacement from that; a photo's closed mouth read as one put every closing of the speech past the lips (the
command sat closed through half of the speech, lip sync r 0.67 on carphone's nearly closed frame 78, 0.88 now).
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
    return _open_by(lm, gap)


def _open_by(lm: np.ndarray, gap) -> np.ndarray:
    """``lm`` (..., 68, 2) float32, in place and returned, with its mouth opened by ``gap`` (...) (y down): the lower
    lip (inner and outer) all the way down, the chin by :data:`CHIN_SHARE`."""
    gap = np.asarray(gap, np.float32)[..., None]
    lm[..., LOWER_INNER_LIP, 1] += gap
    lm[..., LOWER_OUTER_LIP, 1] += gap
    lm[..., CHIN, 1] += gap * CHIN_SHARE.astype(np.float32)
    return lm


SPEAKING_OPENING = 0.12
"""The inner-lip opening (over the inter-ocular distance) of the face the network reads as the target's: the mean of
a speaking face (:func:`speaking_reference`)."""


def speaking_reference(reference: np.ndarray, opening: float | None = None) -> np.ndarray:
    """``reference`` (68, 2) with its mouth opened to at least ``opening`` IOD (None: :data:`SPEAKING_OPENING`): the
    lower lip and the chin moved down as :func:`keep_speech_opening` moves them, nothing else changes; a mouth that
    is already that open is left as it is."""
    lm = np.array(reference, np.float32, copy=True)
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    want = SPEAKING_OPENING if opening is None else float(opening)
    return _open_by(lm, max(want * iod - float(mouth_opening(lm.astype(np.float64))), 0.0))
