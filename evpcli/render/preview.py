"""``evp preview-landmarks``: predicted emotional landmark motion for a speech clip, drawn as a sketch video.

No target video is needed: the landmarks are predicted in the canonical 256×256 frame for one of the workspace's
actors (its reference face gives the identity) and drawn as EVP's facial-part curves, with the speech muxed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evpcli import audio, media
from evpcli.config import EMOTIONS
from evpcli.errors import EvpError
from evpcli.workspace import KIND_ACTOR, Workspace


def resolve_emotion(model, emotion: str | None = None, emotion_audio: str | Path | None = None) -> tuple[np.ndarray, str]:
    """The emotion code to drive with: the mean code of an emotion name, or the code of an emotion clip.

    Returns (code (emotion_dim,) float32, a description). Exactly one of the two must be given.
    """
    import torch

    if (emotion is None) == (emotion_audio is None):
        raise EvpError("give exactly one of --emotion NAME or --emotion-audio FILE")
    if emotion is not None:
        name = emotion.strip().lower()
        if name not in EMOTIONS:
            raise EvpError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
        if name not in model.emotion_means:
            raise EvpError(f"the model was trained without {name} clips; use one of {', '.join(sorted(model.emotion_means))}")
        return model.emotion_means[name].astype(np.float32), name
    windows = audio.speech_windows(media.load_audio(emotion_audio))
    dev = next(model.parameters()).device
    with torch.no_grad():
        code = model.emotion_code(torch.from_numpy(windows).to(dev)).cpu().numpy()
    return code.astype(np.float32), f"of {Path(emotion_audio).name}"


def speech_landmarks(model, wav: np.ndarray, code: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Normalised landmarks (T, 68, 2) of 16 kHz speech with emotion ``code``, one per 25 fps frame."""
    from evpcli.train.audio2lm import predict_landmarks

    windows = audio.speech_windows(wav)
    return predict_landmarks(model, windows, code, reference, audio.frame_rms(wav, len(windows)))


@dataclass
class PreviewResult:
    out: str
    frames: int
    seconds: float
    emotion: str
    actor: str

    def to_dict(self) -> dict:
        return asdict(self)


def preview_landmarks(ws: Workspace, speech: str | Path, out: str | Path, emotion: str | None = None,
                      emotion_audio: str | Path | None = None, actor: str | None = None, device: str = "auto",
                      thickness: int = 2) -> PreviewResult:
    """Write ``out`` (mp4): the sketch of the landmarks predicted from ``speech`` with the given emotion."""
    from evpcli.face.sketch import sketch_video
    from evpcli.paths import check_output
    from evpcli.prepare import load_actor
    from evpcli.train.audio2lm import load_audio2lm

    check_output(out, [speech, emotion_audio], "--out", ["--audio", "--emotion-audio"])
    model = load_audio2lm(ws, "", device)
    actors = sorted(a["key"] for a in ws.artifacts(KIND_ACTOR))
    if actor is None:
        if not actors:
            raise EvpError(f"no actor models in {ws.root}; run `evp prepare-dataset` first")
        actor = actors[0]
    elif actor not in actors:
        raise EvpError(f"unknown actor {actor!r}; the workspace has {', '.join(actors) or 'none'}")
    reference = load_actor(ws, actor)["reference"]
    code, described = resolve_emotion(model, emotion, emotion_audio)
    wav = media.load_audio(speech)
    lm = speech_landmarks(model, wav, code, reference)
    media.write_video(out, sketch_video(lm, (256, 256), thickness), fps=25.0, audio=wav)
    return PreviewResult(str(out), len(lm), len(lm) / 25.0, described, actor)
