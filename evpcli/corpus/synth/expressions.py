"""Emotion expressions: FACS-style prototypes as 3D landmark offsets at full intensity."""

from __future__ import annotations

import numpy as np

from evpcli.config import EMOTIONS
from evpcli.errors import EvpError
from evpcli.face.parts import (BROWS, LEFT_BROW, LOWER_EYELIDS, LOWER_OUTER_LIP, MIRROR, NOSE_BASE, RIGHT_BROW,
                               UPPER_EYELIDS, UPPER_INNER_LIP, UPPER_OUTER_LIP, side_of_midline)

# The prototypes below are written in ~mm of the actors' shapes (outer inter-ocular distance, IOD, about 94.5 mm,
# so 1 mm ~ 1.06 % IOD) at full intensity (level 3), sized like real faces: a broad real smile (the astronaut's,
# against a neutral face) lifts the corners 11-14 % IOD and widens the mouth 11-13 %; posed action units move
# the brows, the mouth corners and the chin by several mm to about a centimetre and the lids by a few mm. The
# network commands a fraction of what it learned (the mean code of levels 1 and 3, regression to the mean), so
# the strong level sits at the top of those ranges. evpcli.face.au measures them (tests/test_synth.py pins them).
EXPRESSION_GAIN = 1.0  # a global knob over all prototypes


def _brow_inner_weight() -> np.ndarray:
    w = np.zeros(68)
    w[RIGHT_BROW] = [0.0, 0.25, 0.5, 0.8, 1.0]
    w[LEFT_BROW] = [1.0, 0.8, 0.5, 0.25, 0.0]
    return w


def expression_offsets(emotion: str, shape: np.ndarray) -> np.ndarray:
    """(68, 3) float64 offsets (shape units, ~mm; y down) of an emotion's prototype at full intensity.

    FACS-style, whole faces: happy AU6+12 (cheeks raised, lower lids up, lip corners up and back), sad AU1+4+15+17
    (inner brows up and together, corners down), angry AU4+5+7+23/24 (brows down and together, lids tight, lips
    pressed), surprised AU1+2+5+26 (brows up, eyes wide, jaw dropped), fear AU1+2+4+5+20 (brows up and together,
    eyes wide, lips stretched), disgusted AU9+10+4 (nose wrinkled, upper lip raised, brows lowered), contempt AU14
    on one side. No prototype pulls the inner lips together: speech opens the mouth in every emotion.
    """
    d = np.zeros((68, 3))
    side = side_of_midline(shape)
    wi = _brow_inner_weight()[BROWS]  # (10,) 1 at the inner brow ends
    near = [49, 53, 59, 55, 61, 63, 65, 67]  # the lip points beside the corners
    if emotion == "happy":  # AU6 + AU12 (+25): corners up and back, cheeks up, lower lids up, eyes narrowed
        d[[48, 54], 1] -= 10.5  # ~11 % IOD corner raise
        d[[48, 54], 0] += 5.5 * side[[48, 54]]  # and back: mouth ~12 % IOD wider
        d[[60, 64], 1] -= 9.5
        d[[60, 64], 0] += 5.0 * side[[60, 64]]
        d[near, 1] -= 4.5
        d[near, 0] += 2.5 * side[near]
        d[[50, 51, 52], 1] -= 1.5  # the upper lip follows a little
        d[LOWER_EYELIDS, 1] -= 3.5  # the cheeks push the lower lids up (AU6)
        d[UPPER_EYELIDS, 1] += 0.8
        d[[36, 45], 1] -= 1.0
        d[[2, 3, 4, 12, 13, 14], 0] += 1.5 * side[[2, 3, 4, 12, 13, 14]]  # cheeks raised and out
        d[[2, 3, 4, 12, 13, 14], 1] -= 2.5
        d[[31, 35], 0] += 1.0 * side[[31, 35]]
        d[[31, 35], 1] -= 0.8
        d[BROWS, 1] += 0.8 * (1 - wi)  # the outer brows come down a little (orbicularis oculi)
    elif emotion == "sad":  # AU1 + AU4 + AU15 + AU17: inner brows up and together, corners down
        d[BROWS, 1] += -9.5 * wi + 1.5 * (1 - wi)  # ~10 % IOD inner brow raise, the outer ends down
        d[BROWS, 0] -= 2.0 * wi * side[BROWS]
        d[UPPER_EYELIDS, 1] += 2.0  # drooping lids
        d[[48, 54], 1] += 8.5  # ~9 % IOD corner drop
        d[[48, 54], 0] -= 1.0 * side[[48, 54]]
        d[[60, 64], 1] += 7.0
        d[[60, 64], 0] -= 1.0 * side[[60, 64]]
        d[[59, 55], 1] += 2.5
        d[[49, 53], 1] += 2.0
        d[[57, 56, 58], 1] -= 1.0  # the chin raiser pushes the outer lower lip up (the inner lips stay: speech)
        d[[7, 8, 9], 1] -= 0.8
    elif emotion == "angry":  # AU4 + AU5 + AU7 + AU23/24: brows down and together, lids tight, lips pressed
        d[BROWS, 1] += 8.5 * wi + 3.5 * (1 - wi)  # ~9 % IOD inner brow lowering
        d[BROWS, 0] -= 4.5 * wi * side[BROWS]  # together: the inner ends ~10 % IOD closer
        d[UPPER_EYELIDS, 1] -= 1.5  # upper lids raised (AU5)
        d[LOWER_EYELIDS, 1] -= 2.5  # lower lids tightened (AU7)
        d[UPPER_OUTER_LIP, 1] += 2.0  # lips pressed: the red of the lips thins toward the inner lips, which
        d[LOWER_OUTER_LIP, 1] -= 2.0  # stay free for speech
        d[[48, 54, 60, 64], 0] -= 2.5 * side[[48, 54, 60, 64]]  # narrowed (AU23)
        d[[48, 54, 60, 64], 1] += 1.5
        d[[31, 35], 0] += 1.5 * side[[31, 35]]  # nostrils flared
        d[[31, 35], 1] -= 1.0
    elif emotion == "surprised":  # AU1 + AU2 + AU5 + AU26: brows up, eyes wide, jaw dropped
        d[BROWS, 1] -= 11.0 * wi + 9.5 * (1 - wi)  # ~11 % IOD
        d[UPPER_EYELIDS, 1] -= 3.5
        d[LOWER_EYELIDS, 1] += 1.0
        jaw = np.arange(4, 13)
        d[jaw, 1] += 7.0 * np.array([0.15, 0.45, 0.75, 0.95, 1.0, 0.95, 0.75, 0.45, 0.15])  # ~7 % IOD chin drop
        d[LOWER_OUTER_LIP, 1] += 6.5 * np.array([0.75, 0.95, 1.0, 0.95, 0.75])
        d[[65, 66, 67], 1] += 6.5 * np.array([0.95, 1.0, 0.95])
        d[[48, 54, 60, 64], 1] += 2.0
        d[[48, 54, 60, 64], 0] -= 1.0 * side[[48, 54, 60, 64]]
    elif emotion == "fear":  # AU1 + AU2 + AU4 + AU5 + AU20: brows up and together, eyes wide, lips stretched
        d[BROWS, 1] += -9.0 * wi - 4.0 * (1 - wi)
        d[BROWS, 0] -= 2.5 * wi * side[BROWS]
        d[UPPER_EYELIDS, 1] -= 3.5
        d[LOWER_EYELIDS, 1] -= 1.0
        d[[48, 54, 60, 64], 0] += 5.0 * side[[48, 54, 60, 64]]  # stretched sideways: ~10 % IOD wider
        d[[48, 54, 60, 64], 1] += 2.0
        d[near, 0] += 2.0 * side[near]
        d[LOWER_OUTER_LIP, 1] += 1.0
    elif emotion == "disgusted":  # AU9 + AU10 (+4): nose wrinkled, upper lip raised, brows lowered
        d[NOSE_BASE, 1] -= 3.5  # ~4 % IOD
        d[[31, 35], 0] += 1.5 * side[[31, 35]]
        d[[29, 30], 1] -= 1.5
        d[UPPER_OUTER_LIP, 1] -= 6.0  # ~6 % IOD upper-lip raise
        d[51, 1] -= 0.5
        d[UPPER_INNER_LIP, 1] -= 5.0
        d[[48, 54], 1] += 0.5
        d[[48, 54], 0] -= 1.0 * side[[48, 54]]
        d[LOWER_OUTER_LIP, 1] += 0.8
        d[BROWS, 1] += 5.0 * wi + 1.5 * (1 - wi)
        d[BROWS, 0] -= 2.5 * wi * side[BROWS]
        d[LOWER_EYELIDS, 1] -= 3.0  # the cheeks rise and narrow the eyes
        d[UPPER_EYELIDS, 1] += 1.2
        d[[2, 3, 4, 12, 13, 14], 1] -= 1.5
    elif emotion == "contempt":  # AU14 on one side: the image-right corner tightened, up and back
        right = side > 0
        for idx, dy, dx in ((54, -5.0, 5.0), (64, -4.5, 4.5), (53, -2.2, 1.6), (55, -2.0, 1.6), (63, -2.0, 1.4),
                            (65, -1.6, 1.4), (52, -0.8, 0.5), (56, -0.8, 0.5), (12, -1.4, 1.0), (13, -1.0, 0.8)):
            j = idx if right[idx] else MIRROR[idx]
            d[j, 1] += dy
            d[j, 0] += dx * side[j]
        d[[46, 47], 1] -= 1.2
        d[RIGHT_BROW, 1] -= 1.5  # the other brow lifts a little
    elif emotion != "neutral":
        raise EvpError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    return EXPRESSION_GAIN * d
