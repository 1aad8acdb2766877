"""benchmarks/bench_mouth_interior.py, the measure of open mouths' insides that real media and renders share (issue
23's drawn tongue): on a face painted with known colours it reads them back."""

import sys
from pathlib import Path

import cv2
import numpy as np

from tests.renderdata import open_mouth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _lab(rgb):
    return cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB)[0, 0].astype(float)


def test_the_mouth_measure_reads_back_a_painted_tongue_lips_and_dark_back():
    from skimage import data

    from bench_mouth_interior import measure
    from evpcli.face.landmarks import detect_landmarks

    image = data.astronaut()
    lm = open_mouth(detect_landmarks(image).astype(np.float64), 30)
    skin, lip, tongue, back = (200, 160, 140), (190, 100, 100), (170, 90, 100), (20, 10, 10)
    img = np.empty_like(image)
    img[:] = skin
    cv2.fillPoly(img, [np.round(lm[48:60]).astype(np.int32)], lip)
    cv2.fillPoly(img, [np.round(lm[60:68]).astype(np.int32)], back)
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(lm[60:68]).astype(np.int32)], 1)
    rows = np.arange(img.shape[0])[:, None]
    img[(inside > 0) & (rows > 0.5 * (lm[62, 1] + lm[66, 1]))] = tongue  # the lower half of the opening
    m = measure(img, lm)
    assert m is not None
    t, lp, sk = _lab(tongue), _lab(lip), _lab(skin)
    assert abs(m["tongue_L"] - t[0] / lp[0]) < 0.02
    assert abs(m["tongue_C"] - np.hypot(*(t[1:] - 128)) / np.hypot(*(lp[1:] - 128))) < 0.03
    assert m["tongue_hue"] < m["lips_hue"]  # the painted tongue is the redder
    assert m["upper_L"] < 0.1 * 255 / sk[0]  # the dark back over the cheeks
    assert measure(img, detect_landmarks(image).astype(np.float64)) is None  # her own mouth is not open enough


def test_the_mouth_measure_says_which_file_it_could_not_read_and_exits_1(tmp_path, capsys):
    from bench_mouth_interior import main

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main([str(tmp_path / "missing.mp4"), str(bad), str(tmp_path / "missing.mp4") + ":1,x"]) == 1
    err = capsys.readouterr().err
    assert "missing.mp4: file not found" in err and "broken.jpg: not a readable image" in err
    assert main(["--help"]) == 0 and "FILE[:FRAMES]" in capsys.readouterr().out
