"""Surprise's light (issue 23): the wide eyes' brighter opening and the dropped jaw's dark mouth, from the frame's own
pixels; and fear's (below): the lids lifted out of the brows' shadow.

A warp raises the brows, opens the eyes and drops the jaw of ``--emotion surprised`` (``face.amplitude``), but the
independent judge (the FER2013 network of ``benchmarks/judge.py``) reads surprise from the light as much as from the
shape: a real startled face shows more of the eyes' whites (the upper lids pulled up off the iris) and a dark, open
mouth. Carphone's warped surprise read surprise 0.40 (top-1 0.52 of the frames; its neutral render 0.08). Lighting its
decoded surprised frames by hand (dlib's landmarks; p(surprise) / top-1, intensity 1): the eyes' openings 1.3x
brighter 0.47 / 0.76, 1.5x 0.51 / 0.67; the open mouth's interior 0.4 darker 0.45 / 0.72; the eyes 1.4x with the
mouth 0.6 darker 0.55 / 0.80. Horizontal forehead wrinkles added nothing (0.43 / 0.58 alone, less with the rest);
brightening the taut lid skin between brow and eye read fear (0.34 / 0.23), darkening it read neutral and sad.

So, by ``amount`` (the code's weight of surprised: 1 at intensity 1, at most :data:`MAX_AMOUNT`; 0 for every other
emotion and the neutral face), multiplicative light on the coarse scale of the frame's own pixels (fine detail and
chroma kept, as for the frown in :mod:`evpcli.engines.shading`), in feathered masks placed by the commanded landmarks:

- :data:`EYE_LIGHT`: the upper half of each eye's opening brighter (the white the raised upper lid bares; the whole
  opening brightened moved dlib's fit of the whole face, and the lip sync measured with it fell 0.84 / 0.69 -> 0.68 /
  0.51 on two of carphone's clips);
- :data:`MOUTH_DARK`: the inner lips' opening darker (the dropped jaw's cavity; its chroma falls with its lightness,
  a dark brown, not a maroon), its soft edge fading inwards only
  (a shadow spilling onto the lips moved where dlib reads them), in full from an opening of :data:`MOUTH_OPEN`; a
  closed mouth has none. It falls from the upper lip: from halfway down the opening the mouth's floor (the tongue,
  lit from the front, as on carphone's own open frames) is spared :data:`MOUTH_FLOOR` of it at the lower lip, all
  of it (the opening darkened alike was a black hole with a grey-brown band for a tongue on the astronaut and the
  smiler; spared 0.4 of it the tongue stayed grey-brown).

In the renderer (``benchmarks/bench_emotion_real.py``, intensity 1, rise of p(surprise) over the neutral render /
top-1): carphone +0.32 / 0.52 -> +0.42 / 0.68, the astronaut +0.41 / 0.96 -> +0.55 / 1.00 (her own p(happy)
0.15 -> 0.03), carphone's frame as a photo (held out of the tuning) +0.11 / 0.00 -> +0.53 / 0.56; the lip sync of
carphone's surprised renders 0.80 -> 0.78 (4 real clips), the astronaut's 0.87 -> 0.87.

At ``amount`` 0 nothing changes, byte for byte.

**Fear's light** (:func:`shade_fear`, ``SHADERS["fear"]``, by the code's weight of fear): fear raises the brows,
draws them together and pulls the upper lids up (AU1+2+4+5), which stretches the lid skin between brow and eye flat
(its fold's shadow opens) and lifts it out of the brow's shadow. The warp moves brows and lids, but carphone's fear
read fear only 0.29 (its rise over the neutral render +0.21, top-1 0.48), the smiler's neutral. Lighting the decoded
fear renders by hand (dlib's landmarks; rise / top-1 on carphone, the smiler, and carphone's frame as a photo): the
lids from a fifth of the way below the brows down to the upper lids' edges 1.3x brighter +0.31 / 0.50, +0.31 / 0.64,
+0.34 / 0.96; the same area with the brows' own hair 1.2x brighter read as well but bleached the astronaut's light
brows (looked at); 1.45x and more read better still (+0.35 / 0.62 ...) but looked like white eye shadow; surprise's
brighter eye openings on top read surprise instead. So :data:`FEAR_LIDS` over that area, feathered by
:data:`EYE_FEATHER`, ``(1 + FEAR_LIDS) ** amount`` brighter, the skin's own colour kept (the judge reads grey; a
paler patch looked painted).
"""

from __future__ import annotations

import cv2
import numpy as np

from evpcli.engines.interior import down_the_opening, mouth_outline, smoothstep
from evpcli.engines.light import DETAIL_IOD, box, face_to_shade, polygon, relight
from evpcli.face.parts import BROWS, INNER_LIP, LEFT_EYE, LOWER_INNER_LIP, RIGHT_EYE, UPPER_INNER_LIP

EYE_LIGHT = 0.4  # how much brighter the eyes' upper openings are at amount 1 (1.4 ** amount at others)
MOUTH_DARK = 0.8  # how much light the open mouth's interior loses at amount 1 (1 - 0.2 ** amount at others)
MOUTH_FLOOR = 1.0  # how much of that the mouth's floor (the tongue) is spared at the lower lip, from halfway down
# (0.4 left the drawn tongue grey-brown: 0.43-0.49 of the lips' lightness, 0.58-0.74 of their chroma on the astronaut,
# the smiler and carphone-photo, 0.54-0.78 and 0.71-0.96 spared all of it; real tongues 0.80-0.84 and 0.73-0.88)
MOUTH_OPEN = 0.03  # the inner lips' opening (IOD) from which the mouth's interior is fully dark: a closed mouth has none
FEAR_LIDS = 0.45  # the most fear brightens its lids at amount 1 (up to the cheeks' light)
FEAR_BELOW_BROW = 0.2  # where the lit lid starts: this much of the way from each brow point to its eye's centre
MAX_AMOUNT = 1.5  # the most any intensity draws (at 1.5 the eyes' whites 1.66x: whites, not lamps)
EYE_FEATHER = 0.03  # the masks' soft edges, in inter-ocular distances
MOUTH_FEATHER = 0.04
CHROMA = 0.3  # the eyes' chroma change per unit of light (the brighter whites a little less red); the mouth's shadow
# keeps the colour's saturation instead (its chroma falls with its lightness: kept chroma with 0.3 more per unit of light
# lost drew the dark cavity a saturated maroon, lipstick-red at 0.6)


def surprise_light(shape: tuple[int, int], lm: np.ndarray, amount: float, part: str) -> np.ndarray:
    """(h, w) float32: the factor each pixel's light is multiplied by (1 where nothing changes) for surprise's
    ``part`` ("eyes": > 1 in the openings, "mouth": < 1 inside the lips) at ``amount``, landmarks ``lm`` (68, 2) in
    the image's pixels."""
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    if part == "eyes":
        # the upper half of each opening (the lower lid's points brought halfway up): the white the raised upper lid
        # bares. The whole opening brightened read as surprise too, but it moved dlib's fit of the whole face (the lip
        # sync measured on carphone's renders 0.84 / 0.69 -> 0.68 / 0.51)
        light = np.zeros(shape, np.float32)
        for eye in (RIGHT_EYE, LEFT_EYE):
            e = lm[eye].copy()
            e[[5, 4]] = e[[1, 2]] + 0.5 * (e[[5, 4]] - e[[1, 2]])
            light = np.maximum(light, polygon(shape, e, EYE_FEATHER * iod))
        return (1.0 + ((1.0 + EYE_LIGHT) ** amount - 1.0) * light).astype(np.float32)
    # a closed mouth is no cavity: its seam is left as the warp drew it
    opening = float(np.linalg.norm(lm[LOWER_INNER_LIP] - lm[UPPER_INNER_LIP], axis=1).mean())
    open_ = float(np.clip(opening / (MOUTH_OPEN * iod), 0.0, 1.0))
    # inside the inner lips only (their soft edge fades inwards): a shadow spilling onto the lips' edges moved where
    # dlib reads them and cost carphone's lip sync (r 0.80 -> 0.68); the opening's outline the drawn cavity's (a U
    # under the upper lip's rounded curve)
    inside = np.clip(2.0 * polygon(shape, mouth_outline(lm[INNER_LIP]), MOUTH_FEATHER * iod) - 1.0, 0.0, 1.0)
    floor = MOUTH_FLOOR * smoothstep((down_the_opening(lm[INNER_LIP], shape[::-1]) - 0.5) / 0.5)
    return (1.0 - (1.0 - (1.0 - MOUTH_DARK) ** amount) * open_ * inside * (1.0 - floor)).astype(np.float32)


def shade_surprise(crop: np.ndarray, landmarks: np.ndarray, amount: float) -> None:
    """Draw surprise's light on ``crop`` (h, w, 3) uint8 in place, by ``amount`` >= 0 (at most
    :data:`MAX_AMOUNT`): ``landmarks`` (68, 2) the face as drawn in the crop (its pixels). Only the boxes around the
    eyes and around the inner lips change; at ``amount`` 0, or for a face too small (inter-ocular distance under
    8 px), nothing does."""
    face = face_to_shade(landmarks, amount, MAX_AMOUNT)
    if face is None:
        return
    lm, iod, amount = face
    b = box(crop.shape, lm[np.concatenate([RIGHT_EYE, LEFT_EYE])], int(np.ceil(4 * EYE_FEATHER * iod)) + 2)
    if b is not None:
        x0, y0, x1, y1 = b
        relight(crop[y0:y1, x0:x1], surprise_light((y1 - y0, x1 - x0), lm - [x0, y0], amount, "eyes"), iod, CHROMA)
    shade_mouth(crop, lm, iod, amount)


def shade_mouth(crop: np.ndarray, lm: np.ndarray, iod: float, amount: float) -> None:
    """The open mouth's interior darker (:data:`MOUTH_DARK` at ``amount`` 1, its floor spared), in place:
    ``lm`` (68, 2) the face in the crop's pixels, ``iod`` its inter-ocular distance. Surprise's dropped jaw, and
    anger's (:func:`evpcli.engines.shading.shade_angry`); a closed mouth is left as it is."""
    b = box(crop.shape, lm[INNER_LIP], int(np.ceil(4 * MOUTH_FEATHER * iod)) + 2)
    if b is None:
        return
    x0, y0, x1, y1 = b
    relight(crop[y0:y1, x0:x1], surprise_light((y1 - y0, x1 - x0), lm - [x0, y0], amount, "mouth"), iod, None)


def cheek_light(image: np.ndarray, lm: np.ndarray) -> float:
    """The lit skin's grey level on ``image`` (h, w, 3) uint8: the median over two squares (0.2 IOD wide) on the
    cheeks, between the jaw and the nose's wings (landmarks ``lm`` (68, 2) in its pixels); NaN where none is inside."""
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    r = max(2, int(round(0.1 * iod)))
    vals = []
    for c in (lm[[1, 2, 3, 31]].mean(0), lm[[15, 14, 13, 35]].mean(0)):
        x, y = int(round(c[0])), int(round(c[1]))
        patch = image[max(y - r, 0):max(y + r, 0), max(x - r, 0):max(x + r, 0)]
        if patch.size:
            vals.append(patch.reshape(-1, 3).astype(np.float32) @ np.float32([0.299, 0.587, 0.114]))
    return float(np.median(np.concatenate(vals))) if vals else float("nan")


def fear_light(region: np.ndarray, lm: np.ndarray, amount: float, skin: float) -> np.ndarray:
    """(h, w) float32: fear's light factor on ``region`` (h, w, 3) uint8 (1 where nothing changes; > 1 on the lids
    between each brow and its eye's upper lid, the brows' hair left) at ``amount``, landmarks ``lm`` (68, 2) in the
    region's pixels, ``skin`` the lit cheeks' grey level (:func:`cheek_light`): the lids are lifted out of shadow,
    up to that level and by at most ``(1 + FEAR_LIDS) ** amount``, never darkened."""
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    mask = np.zeros(region.shape[:2], np.float32)
    for brow, eye in ((BROWS[:5], RIGHT_EYE), (BROWS[5:], LEFT_EYE)):
        top = lm[brow] + FEAR_BELOW_BROW * (lm[eye].mean(0) - lm[brow])
        mask = np.maximum(mask, polygon(mask.shape, np.concatenate([top, lm[eye[3::-1]]]), EYE_FEATHER * iod))
    if not np.isfinite(skin):
        return np.ones_like(mask)
    grey = cv2.GaussianBlur(cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0),
                            max(0.7, DETAIL_IOD * iod))  # the coarse light relight multiplies
    gain = np.clip(skin / np.maximum(grey, 1.0), 1.0, (1.0 + FEAR_LIDS) ** amount)
    return (1.0 + (gain - 1.0) * mask).astype(np.float32)


def shade_fear(crop: np.ndarray, landmarks: np.ndarray, amount: float) -> None:
    """Draw fear's light on ``crop`` (h, w, 3) uint8 in place, by ``amount`` >= 0 (at most :data:`MAX_AMOUNT`):
    ``landmarks`` (68, 2) the face as drawn in the crop. Only the box around the brows and eyes changes; at
    ``amount`` 0, or for a face too small, nothing does."""
    face = face_to_shade(landmarks, amount, MAX_AMOUNT)
    if face is None:
        return
    lm, iod, amount = face
    b = box(crop.shape, lm[np.concatenate([BROWS, RIGHT_EYE, LEFT_EYE])], int(np.ceil(4 * EYE_FEATHER * iod)) + 2)
    if b is None:
        return
    x0, y0, x1, y1 = b
    region = crop[y0:y1, x0:x1]
    relight(region, fear_light(region, lm - [x0, y0], amount, cheek_light(crop, lm)), iod, 0.0)
