"""The library's front door: render from a script or a notebook, the models loaded once for many clips.

    import evpcli

    evp = evpcli.load()                                  # ./evp-workspace (or $EVP_WORKSPACE), CPU
    evp.render("speech.wav", "me.mp4", "happy.mp4", emotion="happy")
    evp.render("other.wav", "me.mp4", "angry.mp4", emotion_audio="angry_clip.wav", intensity=1.5)
    evp.interpolate("speech.wav", "me.mp4", "ramp.mp4", "sad", "happy")
    evpcli.render("speech.wav", "portrait.png", "hello.mp4", emotion="surprised", head_motion=True)  # one clip

Thin over the stage functions the CLI calls (:func:`evpcli.render.pipeline.render` and
:func:`~evpcli.render.pipeline.interpolate`): the same options with the same defaults, the same
:class:`~evpcli.render.pipeline.RenderResult`, the same bytes at ``out``; errors raise :class:`evpcli.errors.EvpError`
(a bad input or failed work) or :class:`~evpcli.errors.UsageError` (a bad option) with the CLI's one-line message.
docs/api.md describes it with an example.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Evp:
    """A workspace and an audio-to-landmark model, loaded once (:func:`load`); each :meth:`render` or
    :meth:`interpolate` drives the face with that model (the model stays loaded in the process,
    :func:`evpcli.models.load_audio2lm`, so a render loads no model) and reuses the workspace's cached target
    analyses (a target's pose fit and mouth bank are computed on its first render only).

    ``workspace``: :class:`evpcli.workspace.Workspace`; ``model``: its
    :class:`~evpcli.models.Audio2LandmarkBundle` (``model.source`` says which model and where it came from);
    ``device``: where the networks run."""

    def __init__(self, workspace: str | os.PathLike | None = None, models: str | os.PathLike | None = None,
                 device: str = "cpu"):
        from evpcli.models import load_audio2lm
        from evpcli.workspace import DEFAULT_WORKSPACE, Workspace

        self.workspace = Workspace(Path(workspace or os.environ.get("EVP_WORKSPACE") or DEFAULT_WORKSPACE))
        self.workspace.check_usable()
        self.device = device
        self.model = load_audio2lm(self.workspace, path=models, device=device, backend="auto")
        self._model_path = models

    def __repr__(self) -> str:
        return f"Evp(workspace={str(self.workspace.root)!r}, model={self.model.source.describe()!r}, device={self.device!r})"

    def render(self, audio: str | os.PathLike, target: str | os.PathLike, out: str | os.PathLike, *,
               emotion: str | None = None, emotion_audio: str | os.PathLike | None = None,
               emotion_face: str | os.PathLike | None = None, **options: Any):
        """Write ``out``: the ``target`` person (a video or a photo) saying ``audio`` with the emotion of exactly one
        of ``emotion`` (a name: angry, contempt, disgusted, fear, happy, neutral, sad, surprised),
        ``emotion_audio`` (a clip spoken with it) or ``emotion_face`` (a photo or video of a face). ``options``: those
        of :func:`evpcli.render.pipeline.render` (``intensity``, ``renderer``, ``head_motion``, ``fps``,
        ``landmarks_out``, ``guidance_out``, ``follow_face``, ``crf``, ``preset``, ``face``, ``progress``), as
        ``evp render`` has them. Returns the :class:`~evpcli.render.pipeline.RenderResult`."""
        from evpcli.render.pipeline import render

        return render(self.workspace, audio, target, out, emotion=emotion, emotion_audio=emotion_audio,
                      emotion_face=emotion_face, model_path=self._model_path, device=self.device, **options)

    def interpolate(self, audio: str | os.PathLike, target: str | os.PathLike, out: str | os.PathLike,
                    from_emotion: str, to_emotion: str, **options: Any):
        """Write ``out`` with the emotion moving from ``from_emotion`` to ``to_emotion`` over the clip (each a name,
        an emotion clip's path or ``face:PATH``); ``options``: those of :func:`evpcli.render.pipeline.interpolate`
        (``alpha``, ``intensity``, ``sheet``, ``sheet_steps``, ``renderer``, ``head_motion``, ...), as
        ``evp interpolate`` has them. Returns the :class:`~evpcli.render.pipeline.RenderResult`."""
        from evpcli.render.pipeline import interpolate

        return interpolate(self.workspace, audio, target, out, from_emotion, to_emotion, model_path=self._model_path,
                           device=self.device, **options)


def load(workspace: str | os.PathLike | None = None, models: str | os.PathLike | None = None,
         device: str = "cpu") -> Evp:
    """Open a workspace (None: ``$EVP_WORKSPACE``, else ``./evp-workspace``, as the CLI does) and load its
    audio-to-landmark model: ``models`` (a checkpoint's path) if given, else the workspace's newest finished one,
    else the model shipped with evp. ``device``: "cpu", "cuda", "cuda:N" or "auto". Returns an :class:`Evp` that
    renders many clips with it."""
    return Evp(workspace, models, device)


def render(audio: str | os.PathLike, target: str | os.PathLike, out: str | os.PathLike, *,
           workspace: str | os.PathLike | None = None, models: str | os.PathLike | None = None, device: str = "cpu",
           **options: Any):
    """One render: ``load(workspace, models, device).render(audio, target, out, **options)`` (see :meth:`Evp.render`
    for the emotion and the options). Returns the :class:`~evpcli.render.pipeline.RenderResult`."""
    return load(workspace, models, device).render(audio, target, out, **options)
