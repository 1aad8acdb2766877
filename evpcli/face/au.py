"""Action-unit-like measures of a face against its neutral: how far an expression moves the lip corners, brows,
lids, lips and jaw, in percent of the neutral face's outer inter-ocular distance (eye corners 36-45).

The same numbers for every kind of landmarks (image y down): 2D pixels of a frame, the normalised 256 frame, the
synthetic corpus's 3D shapes (x, y used). Both faces must be in one frame with the head still (a frontal command
against the neutral command, a prototype's offsets added to a shape); no alignment is done here.

=================  ==========================================================  ===============================
measure            what (expression minus neutral, % IOD)                      AUs that move it
=================  ==========================================================  ===============================
corner_raise       mean rise of the lip corners 48, 54                         12 (up), 15 / 20 (down)
corner_asym        |rise of 54 - rise of 48|                                   14 unilateral (contempt)
mouth_width        corner-to-corner distance 48-54                             12, 20 (wider), 23 (narrower)
inner_brow_raise   mean rise of the inner brow ends 21, 22                     1 (up), 4 (down)
outer_brow_raise   mean rise of the outer brow ends 17, 26                     2 (up)
brow_lowering      mean drop of all brow points 17-26                          4, 9
brow_gap           distance between the inner brow ends 21-22                  4 (together: negative)
eye_aperture       mean lid gap (37-41, 38-40, 43-47, 44-46)                    5 (wider), 6 / 7 (narrower)
lower_lid_raise    mean rise of the lower lids 40, 41, 46, 47                   6, 7
upper_lip_raise    rise of the upper lip centre 51                              10
nose_raise         mean rise of the nose base 31-35                             9
jaw_drop           drop of the chin 8                                          26, 27
lip_opening        inner-lip gap (mean of 61-67, 62-66, 63-65)                  25, 26; speech
=================  ==========================================================  ===============================
"""

from __future__ import annotations

import numpy as np

from evpcli.face.parts import BROWS, LOWER_EYELIDS, NOSE_BASE, UPPER_EYELIDS, mouth_opening

AU_MEASURES = ("corner_raise", "corner_asym", "mouth_width", "inner_brow_raise", "outer_brow_raise",
               "brow_lowering", "brow_gap", "eye_aperture", "lower_lid_raise", "upper_lip_raise", "nose_raise",
               "jaw_drop", "lip_opening")


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Outer inter-ocular distance (eye corners 36, 45). (..., 68, D) -> (...)."""
    lm = np.asarray(landmarks, np.float64)
    return np.linalg.norm(lm[..., 45, :2] - lm[..., 36, :2], axis=-1)


def _raw(lm: np.ndarray) -> dict[str, np.ndarray]:
    y = lm[..., 1]
    return {
        "corner_raise": -0.5 * (y[..., 48] + y[..., 54]),
        "corner_54": -y[..., 54],
        "corner_48": -y[..., 48],
        "mouth_width": np.linalg.norm(lm[..., 54, :2] - lm[..., 48, :2], axis=-1),
        "inner_brow_raise": -0.5 * (y[..., 21] + y[..., 22]),
        "outer_brow_raise": -0.5 * (y[..., 17] + y[..., 26]),
        "brow_lowering": y[..., BROWS].mean(-1),
        "brow_gap": np.linalg.norm(lm[..., 22, :2] - lm[..., 21, :2], axis=-1),
        "eye_aperture": (y[..., LOWER_EYELIDS] - y[..., UPPER_EYELIDS]).mean(-1),
        "lower_lid_raise": -y[..., LOWER_EYELIDS].mean(-1),
        "upper_lip_raise": -y[..., 51],
        "nose_raise": -y[..., NOSE_BASE].mean(-1),
        "jaw_drop": y[..., 8],
        "lip_opening": mouth_opening(lm),
    }


def au_measures(landmarks: np.ndarray, neutral: np.ndarray) -> dict[str, np.ndarray]:
    """Each measure of :data:`AU_MEASURES` for ``landmarks`` against ``neutral`` (both (..., 68, D), the same
    frame; broadcast), in % of the neutral's outer inter-ocular distance; arrays of shape (...)."""
    lm, ne = np.asarray(landmarks, np.float64), np.asarray(neutral, np.float64)
    a, b = _raw(lm), _raw(ne)
    pct = 100.0 / np.maximum(inter_ocular(ne), 1e-9)
    out = {k: (a[k] - b[k]) * pct for k in AU_MEASURES if k != "corner_asym"}
    out["corner_asym"] = np.abs((a["corner_54"] - b["corner_54"]) - (a["corner_48"] - b["corner_48"])) * pct
    return {k: out[k] for k in AU_MEASURES}
