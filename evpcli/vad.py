"""Voice activity per video frame, for the silence gate: WebRTC's VAD (``webrtcvad-wheels``: a compiled GMM
detector, no model file), which tells speech from stationary noise where an energy threshold cannot.

:func:`voice_activity` returns, for every 25 fps video frame, the fraction of its 10 ms sub-frames the detector
calls speech, with a short hangover (speech keeps the mouth free for ``hangover`` frames after it, as mouths close
after the sound stops) and the same smoothing as the energy gate. Without the package it raises an EvpError that
says how to install it; callers fall back to the energy gate.
"""

from __future__ import annotations

import numpy as np

from evpcli.config import FPS
from evpcli.errors import EvpError

SR = 16000
SUB = 160  # 10 ms sub-frames at 16 kHz


def available() -> bool:
    try:
        import webrtcvad  # noqa: F401
    except ImportError:
        return False
    return True


def voice_activity(wav: np.ndarray, n_frames: int, fps: float = FPS, aggressiveness: int = 3,
                   hangover: int = 2, smooth: int = 3) -> np.ndarray:
    """(n_frames,) float64 in [0, 1]: how much of each video frame is speech (16 kHz mono float32 ``wav``).

    ``aggressiveness`` 0-3 is WebRTC's mode (3 = the least likely to call noise speech). A frame's value is the
    fraction of its 10 ms sub-frames detected as speech; then a running maximum over the ``hangover`` frames
    before it, then a moving average over ``smooth`` frames.
    """
    try:
        import webrtcvad
    except ImportError as exc:
        raise EvpError("the voice-activity gate needs webrtcvad; install it with: pip install webrtcvad-wheels") from exc
    vad = webrtcvad.Vad(int(aggressiveness))
    x = np.asarray(wav, np.float64)
    peak = np.abs(x).max() if len(x) else 0.0
    if peak > 0:  # the detector is level-sensitive: bring the clip to a normal recording level
        x = x / peak * 0.5
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    edges = np.round(np.arange(n_frames + 1) * SR / fps).astype(np.int64)
    n_sub = int(edges[-1] // SUB) + 1
    pcm = np.pad(pcm, (0, max(n_sub * SUB - len(pcm), 0)))
    speech = np.array([vad.is_speech(pcm[k * SUB:(k + 1) * SUB].tobytes(), SR) for k in range(n_sub)], np.float64)
    out = np.zeros(n_frames)
    for t in range(n_frames):
        a, b = edges[t] // SUB, max(edges[t + 1] // SUB, edges[t] // SUB + 1)
        out[t] = speech[a:b].mean()
    if hangover > 0:
        out = np.array([out[max(0, t - hangover):t + 1].max() for t in range(n_frames)])
    if smooth > 1 and n_frames > 1:
        k = np.ones(smooth) / smooth
        out = np.convolve(np.pad(out, smooth // 2, mode="edge"), k, mode="valid")[:n_frames]
    return np.clip(out, 0.0, 1.0)
