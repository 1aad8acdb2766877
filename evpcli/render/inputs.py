"""The render stage's inputs, checked before any work: files exist and are not empty, outputs are writable and
none of them is an input or inside the workspace (one line, exit 1), encoder settings in range and output
containers known (usage errors, exit 2), and the speech long enough.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evpcli import media
from evpcli.errors import EvpError, UsageError

MIN_SPEECH_SECONDS = 0.04

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")



def check_inputs(audio: str | Path, target: str | Path, out: str | Path, emotion_audio: str | Path | None = None,
                 extra_outputs: dict[str, str | Path | None] | None = None, model: str | Path | None = None,
                 workspace: str | Path | None = None, emotion_face: str | Path | None = None) -> None:
    """Everything that can be checked before any work: inputs exist, outputs are writable, none of them is an input
    (the model included) and none lands inside the workspace's own files (one line, exit 1)."""
    from evpcli.paths import check_output, check_outside

    inputs = {"--audio": audio, "--target": target, "--emotion-audio": emotion_audio, "--emotion-face": emotion_face,
              "--model": model}
    for option, p in inputs.items():
        if p is None:
            continue
        path = Path(p)
        if not path.exists():
            raise EvpError(f"{path}: file not found (given as {option})")
        if path.is_dir():
            raise EvpError(f"{path} is a folder (given as {option}); give a file")
        if path.stat().st_size == 0:
            raise EvpError(f"{path}: the file is empty (given as {option})")
    names = [k for k, v in inputs.items() if v is not None]
    given = [inputs[k] for k in names]
    outputs = {"--out": out, **(extra_outputs or {})}
    seen: dict[str, str] = {}
    for option, p in outputs.items():
        if p is None:
            continue
        check_output(p, given, option=option, input_names=names)
        if workspace is not None:
            check_outside(p, workspace, option)
        key = os.path.abspath(p)
        if key in seen:
            raise EvpError(f"{option} and {seen[key]} are the same file ({p}); give two paths")
        seen[key] = option
    for option in ("--out", "--guidance-out"):  # after the checks that protect files: a usage error, exit 2
        if outputs.get(option) is not None:
            media.check_container(outputs[option], option)



def crf_for(width: int, height: int) -> int:
    """The x264 CRF a render of ``width`` x ``height`` frames gets by default: 12 from 320x240 pixels up, 10 below.

    A small frame's face is a few dozen pixels wide and its detail lives in the finest scales, which x264 quantises
    first: at CRF 15 carphone (176x144) keeps 0.83 of its face's sharpness (variance of the Laplacian, re-encoded
    with nothing changed), at CRF 10 0.92, for 530 instead of 250 kb/s. Large frames went at 15 until a large
    photo showed what x264's macroblock tree does to a render: the background, copied unchanged from frame to
    frame, is referenced by every later frame and gets the bits, while the face, which moves by fractions of a
    pixel, is quantised harder; a 584x824 portrait's face kept 0.90 of its target's sharpness at 15 (0.93 of its
    skin), 0.98 at 12 (1.04 of its skin; lossless: 1.05), for 1.6x the bytes (980 kb/s)
    (``python benchmarks/bench_render_real.py --crf N``)."""
    return 12 if int(width) * int(height) >= 320 * 240 else 10


def check_encoding(crf: int | None, preset: str) -> None:
    """Usage errors (exit 2) for an encoder setting out of range (``crf`` None: :func:`crf_for` the frame size)."""
    if crf is not None and not 0 <= int(crf) <= 51:
        raise UsageError(f"--crf must be between 0 (lossless) and 51, got {crf}")
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset!r}: use one of {', '.join(PRESETS)}")



def load_speech(path: str | Path) -> np.ndarray:
    """16 kHz mono float32 speech, at least one video frame long."""
    wav = media.load_audio(path)
    if len(wav) < MIN_SPEECH_SECONDS * 16000:
        raise EvpError(f"{path}: the speech is {1000 * len(wav) / 16000:.0f} ms long; give at least "
                       f"{1000 * MIN_SPEECH_SECONDS:.0f} ms of speech")
    return wav

