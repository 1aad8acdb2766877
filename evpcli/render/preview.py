"""``evp preview-landmarks``: predicted emotional landmark motion for a speech clip, drawn as a sketch video.

No target video is needed: the landmarks are predicted in the canonical 256×256 frame for one of the workspace's
actors (its reference face gives the identity; in a workspace without actors, the canonical mean face) and drawn
as EVP's facial-part curves, with the speech muxed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evpcli import media
from evpcli.errors import EvpError
from evpcli.infer import emotion_code, speech_landmarks
from evpcli.models import load_audio2lm
from evpcli.workspace import KIND_ACTOR, Workspace


@dataclass
class PreviewResult:
    out: str
    frames: int
    seconds: float
    emotion: str
    actor: str
    model: dict
    emotion_read: dict | None = None  # for --emotion-audio: EmotionCode.to_dict() (reading, confident, ...)
    warnings: list[str] | None = None

    def summary(self) -> str:
        read = self.emotion_read or {}
        from evpcli.infer import reading_phrase

        said = reading_phrase(read)
        return (f"wrote {self.out}: {self.frames} frames ({self.seconds:.1f} s), emotion {self.emotion}{said}, actor "
                f"{self.actor}; model {self.model['key']} ({self.model['origin']})"
                + "".join(f"\nwarning: {w}" for w in self.warnings or []))

    def to_dict(self) -> dict:
        return asdict(self)


def preview_landmarks(ws: Workspace, speech: str | Path, out: str | Path, emotion: str | None = None,
                      emotion_audio: str | Path | None = None, actor: str | None = None, device: str = "auto",
                      thickness: int = 2, model_path: str | Path | None = None) -> PreviewResult:
    """Write ``out`` (mp4): the sketch of the landmarks predicted from ``speech`` with the given emotion."""
    from evpcli.face.sketch import sketch_video
    from evpcli.paths import check_output
    from evpcli.actors import load_actor

    check_output(out, [speech, emotion_audio], "--out", ["--audio", "--emotion-audio"])
    model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
    actors = sorted(a["key"] for a in ws.artifacts(KIND_ACTOR))
    if actor is None and not actors:  # an empty workspace (shipped model): the canonical mean face
        from evpcli.face.normalize import TEMPLATE

        actor, reference = "the canonical mean face", TEMPLATE.astype(np.float32)
    else:
        if actor is None:
            actor = actors[0]
        elif actor not in actors:
            raise EvpError(f"unknown actor {actor!r}; the workspace has {', '.join(actors) or 'none'}")
        reference = load_actor(ws, actor)["reference"]
    emo = emotion_code(model, emotion, emotion_audio)
    wav = media.load_audio(speech)
    lm = speech_landmarks(model, wav, emo.code, reference)
    media.write_video(out, sketch_video(lm, (256, 256), thickness), fps=25.0, audio=wav)
    from evpcli.infer import ood_warning

    read = None if emo.source != "audio" else emo.to_dict()
    warning = ood_warning(emo) if emo.source == "audio" else None
    return PreviewResult(str(out), len(lm), len(lm) / 25.0, emo.description, actor, model.source.to_dict(), read,
                         [warning] if warning else [])
