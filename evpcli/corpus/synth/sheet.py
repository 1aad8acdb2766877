"""The contact sheet: one face-cropped frame per emotion and level of an actor, as a labelled PNG grid."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from evpcli.config import EMOTIONS
from evpcli.corpus.synth.clip import SynthClip, make_clip
from evpcli.atomic import atomic_path


def _most_frontal_frame(clip: SynthClip) -> int:
    n = len(clip.frames)
    lo, hi = n // 4, max(n // 4 + 1, 3 * n // 4)
    e = clip.gt["euler_deg"][lo:hi]
    mo = clip.gt["mouth_open"][lo:hi]
    cost = np.abs(e[:, 0]) + np.abs(e[:, 1]) + 0.3 * np.abs(mo - np.percentile(mo, 35)) + 5 * clip.gt["blink"][lo:hi]
    return lo + int(np.argmin(cost))


def _face_crop(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A square crop around the face (1.6 face widths), clamped to the frame."""
    h, w = frame.shape[:2]
    centre = 0.5 * (lm.min(0) + lm.max(0))
    side = int(min(h, w, round(1.6 * (lm[:, 0].max() - lm[:, 0].min()))))
    x0 = int(np.clip(round(centre[0] - side / 2), 0, w - side))
    y0 = int(np.clip(round(centre[1] - side / 2), 0, h - side))
    return frame[y0:y0 + side, x0:x0 + side]


def contact_sheet(path: str | os.PathLike, actor_index: int = 0, emotions: Sequence[str] = EMOTIONS,
                  levels: Sequence[int] = (1, 2, 3), tile: int = 128, sentence_index: int = 0, seed: int = 0,
                  size: int = 256, palette: bool = False) -> Path:
    """Write a PNG grid: one frame per emotion (columns) and level (rows) of one actor, labelled.

    Frames are generated at ``size``, cropped to the face and shrunk to ``tile`` pixels; neutral (one level) sits
    in the first row. ``palette`` writes a 256-colour PNG (smaller, for documentation).
    """
    levels = tuple(sorted(set(levels)))
    label_h, pad = max(14, tile // 7), 2
    width = len(emotions) * (tile + pad) + pad + 22
    height = len(levels) * (tile + pad) + pad + label_h
    sheet = np.full((height, width, 3), 255, np.uint8)
    font, fscale = cv2.FONT_HERSHEY_SIMPLEX, tile / 300
    for col, emotion in enumerate(emotions):
        x = 22 + pad + col * (tile + pad)
        cv2.putText(sheet, emotion, (x + 2, label_h - 4), font, fscale, (0, 0, 0), 1, cv2.LINE_AA)
        for row, level in enumerate(levels):
            if emotion == "neutral" and row > 0:
                continue
            clip = make_clip(actor_index, emotion, 1 if emotion == "neutral" else level, sentence_index, size, seed)
            i = _most_frontal_frame(clip)
            frame = cv2.resize(_face_crop(clip.frames[i], clip.gt["landmarks"][i]), (tile, tile),
                               interpolation=cv2.INTER_AREA)
            y = label_h + pad + row * (tile + pad)
            sheet[y:y + tile, x:x + tile] = frame
    for row, level in enumerate(levels):
        y = label_h + pad + row * (tile + pad) + tile // 2
        cv2.putText(sheet, f"L{level}", (2, y), font, fscale, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    with atomic_path(path) as tmp:
        if palette:  # 256 colours: a third of the bytes, fine for a README
            from PIL import Image

            image = Image.fromarray(sheet).quantize(256, method=Image.Quantize.MEDIANCUT,
                                                    dither=Image.Dither.FLOYDSTEINBERG)
            image.save(tmp, format="PNG", optimize=True)
        else:
            tmp.write_bytes(cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
    return path
