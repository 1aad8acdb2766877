"""The mouth's corners redrawn where the command moves an outer lip corner away from its inner one.

The warp maps the target's inner and outer lip corners onto the commanded ones; where the command pulls an outer
corner (48, 54) away from its inner corner (60, 64), as sad's lowered outer corners did, the target's own corner
between them (its dark crease, the lips' parting line, a little of the open mouth) is stretched into a dark wedge or
dashes beside the commanded corner. :func:`redraw_commissures` paints that band over and draws a thin crease along
it instead: a corner as one that had that shape. Used by :meth:`evpcli.engines.mouth.MouthFiller.fill` on every
drawn frame; speech and every shipped emotion stay under the threshold (since stop 44 sad's inner corners go down
with the outer ones, ``face.amplitude.MOUTH_FROM_NETWORK``: at most 0.03 IOD on carphone), so it guards commands
that pull a corner apart (a face reference's, an interpolation's, a stronger stretch) rather than drawing any
shipped emotion.
"""

from __future__ import annotations

import cv2
import numpy as np

COMMISSURES = ((60, 48), (64, 54))  # (inner corner, outer corner) of each side
COMMISSURE_FROM = 0.03  # the corner's change (IOD) from which it is redrawn (speech and the other emotions: <= 0.025)
COMMISSURE_SPAN = 0.03
COMMISSURE_WIDTH = 0.05  # the band painted over along the corner (IOD, full width)
COMMISSURE_DARK = 0.2  # the redrawn crease: this much darker than the lips around it
COMMISSURE_START = 0.3  # the band starts this far along from the inner corner to the outer one (from the corner
# itself, inpainting pulled the open mouth's dark into the band: carphone-closed's sad lip sync 0.83 -> 0.73, at 0.3 0.80)


def commissure_change(tracked: np.ndarray, adapted: np.ndarray) -> np.ndarray:
    """(2,) how far (IOD) the command moves each outer mouth corner relative to its inner corner, in the mouth's own
    frame (along and across the line between the outer corners, so the head's pose and the mouth's width cancel
    out): sad's corners pulled down below the inner ones, fear's lips stretched past them."""
    out = np.zeros(2)

    def local(lm: np.ndarray, v: np.ndarray) -> np.ndarray:  # v along and across the mouth, in IOD
        u = lm[54] - lm[48]
        u = u / max(float(np.linalg.norm(u)), 1e-6)
        return np.array([v @ u, v @ np.array([-u[1], u[0]])]) / max(float(np.linalg.norm(lm[45] - lm[36])), 1e-6)

    for k, (i, o) in enumerate(COMMISSURES):
        out[k] = float(np.linalg.norm(local(adapted, adapted[o] - adapted[i]) - local(tracked, tracked[o] - tracked[i])))
    return out


def redraw_commissures(crop: np.ndarray, tracked: np.ndarray, adapted: np.ndarray) -> None:
    """Where the command moves an outer mouth corner away from its inner corner, the warp stretches the target's
    own corner between them (its dark crease, the lips' parting line, a bit of the open mouth) into a dark wedge or
    dashes beside the commanded corner. There the band along the commanded corner (inner to outer corner,
    :data:`COMMISSURE_WIDTH` wide) is painted over from around it (inpainting: lip above and below, skin beyond)
    and a thin crease is drawn along it, :data:`COMMISSURE_DARK` darker than the lips: a mouth corner as one that
    had that shape. Blended in by how much the corner changed (:func:`commissure_change`). In place; landmarks in
    ``crop``'s pixels."""
    change = commissure_change(tracked, adapted)
    weights = np.clip((change - COMMISSURE_FROM) / COMMISSURE_SPAN, 0.0, 1.0)
    if not weights.any():
        return
    h, w = crop.shape[:2]
    iod = float(np.linalg.norm(adapted[45] - adapted[36]))
    half = max(1.0, 0.5 * COMMISSURE_WIDTH * iod)
    for (i, o), wt in zip(COMMISSURES, weights, strict=True):
        if wt <= 0.0:
            continue
        a, b = adapted[i] + COMMISSURE_START * (adapted[o] - adapted[i]), adapted[o]
        lo = np.floor(np.minimum(a, b) - 3 * half - 2).astype(int)
        hi = np.ceil(np.maximum(a, b) + 3 * half + 2).astype(int)
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [w, h])
        if (hi - lo < 3).any():
            continue
        region = np.ascontiguousarray(crop[lo[1]:hi[1], lo[0]:hi[0]])
        pa, pb = a - lo, b - lo
        band = np.zeros(region.shape[:2], np.uint8)
        cv2.line(band, tuple(np.round(pa * 16).astype(int)), tuple(np.round(pb * 16).astype(int)), 255,
                 max(1, int(round(2 * half))), cv2.LINE_AA, shift=4)
        painted = cv2.inpaint(region, (band > 0).astype(np.uint8) * 255, max(2.0, half), cv2.INPAINT_TELEA)
        crease = np.zeros(region.shape[:2], np.uint8)
        cv2.line(crease, tuple(np.round(pa * 16).astype(int)), tuple(np.round(pb * 16).astype(int)), 255, 1,
                 cv2.LINE_AA, shift=4)
        painted = painted.astype(np.float32) * (1 - COMMISSURE_DARK * crease.astype(np.float32)[..., None] / 255)
        m = cv2.GaussianBlur(band.astype(np.float32) / 255, (0, 0), 0.5)[..., None] * wt
        out = region.astype(np.float32) * (1 - m) + painted * m
        crop[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
