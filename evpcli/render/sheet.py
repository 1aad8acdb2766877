"""Contact sheets of rendered faces: one row per emotion (or alpha step), one column per moment of the speech.

Like the paper's Fig. 1b: each cell is the target's face crop rendered with that row's emotion code at that
column's video frame, so a row reads as time and a column compares emotions at the same words.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evpcli.atomic import atomic_path


def face_crop(frame: np.ndarray, landmarks: np.ndarray, side: int, margin: float = 1.7) -> np.ndarray:
    """A square crop of ``frame`` around the face of ``landmarks`` (68, 2), ``margin`` x the face's size, resized to
    ``side`` pixels (borders replicated where it leaves the frame)."""
    lm = np.asarray(landmarks, np.float64)
    centre = (lm.min(0) + lm.max(0)) / 2
    half = margin * float(np.max(lm.max(0) - lm.min(0))) / 2
    x0, y0 = int(round(centre[0] - half)), int(round(centre[1] - half))
    size = max(2, int(round(2 * half)))
    h, w = frame.shape[:2]
    pad = max(0, -x0, -y0, x0 + size - w, y0 + size - h)
    src = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else frame
    crop = src[y0 + pad:y0 + pad + size, x0 + pad:x0 + pad + size]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def write_sheet(path: str | Path, rows: list[list[np.ndarray]], labels: list[str], col_labels: list[str] | None = None,
                label_width: int = 150) -> Path:
    """Assemble equally sized RGB cells into a PNG grid with a label left of each row (and above each column)."""
    side = rows[0][0].shape[0]
    top = 22 if col_labels else 0
    sheet = np.full((top + side * len(rows), label_width + side * len(rows[0]), 3), 255, np.uint8)
    for r, (cells, label) in enumerate(zip(rows, labels, strict=True)):
        y = top + r * side
        for c, cell in enumerate(cells):
            sheet[y:y + side, label_width + c * side:label_width + (c + 1) * side] = cell
        cv2.putText(sheet, label, (6, y + side // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    for c, label in enumerate(col_labels or []):
        cv2.putText(sheet, label, (label_width + c * side + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1,
                    cv2.LINE_AA)
    path = Path(path)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
