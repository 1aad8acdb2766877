"""The prepared clips read back: what training and evaluation share of ``evp prepare-dataset``'s artifacts.

:func:`load_clip_data` gives, per prepared clip, its MFCC windows (one per 25 fps frame), its normalised
landmarks, the actor's reference face and the audio RMS per frame (:class:`ClipData`): the audio-to-landmark stage
trains on them and ``evp evaluate`` measures on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evpcli import audio
from evpcli.errors import EvpError
from evpcli.workspace import KIND_LANDMARKS, KIND_MFCC, Workspace, load_npz


@dataclass
class ClipData:
    """One prepared clip as training and evaluation see it."""

    clip_id: str
    actor: str
    emotion: str
    sentence: str
    windows: np.ndarray  # (T, 28, 12) float32 raw MFCC windows
    normalised: np.ndarray  # (T, 68, 2) float32, canonical 256 px frame
    valid: np.ndarray  # (T,) bool: landmarks measured or interpolated over a short gap
    reference: np.ndarray  # (68, 2) float32, the actor's reference face
    rms: np.ndarray  # (T,) float32


def load_clip_data(ws: Workspace, clip_ids: set[str] | None = None) -> list[ClipData]:
    """Every prepared clip (or those in ``clip_ids``) with MFCC, landmarks and an actor model."""
    from evpcli.actors import load_actor

    mfcc_rows = {a["clip_id"]: a for a in ws.artifacts(KIND_MFCC)}
    lm_rows = {a["clip_id"]: a for a in ws.artifacts(KIND_LANDMARKS)}
    actors: dict[str, np.ndarray] = {}
    out = []
    for c in ws.clips(status="ok"):
        if (clip_ids is not None and c.clip_id not in clip_ids) or c.clip_id not in mfcc_rows or c.clip_id not in lm_rows:
            continue
        if c.actor not in actors:
            actors[c.actor] = load_actor(ws, c.actor)["reference"].astype(np.float32)
        f = load_npz(mfcc_rows[c.clip_id]["path"])
        lm = load_npz(lm_rows[c.clip_id]["path"])
        t = min(int(f["n_frames"]), len(lm["normalised"]))
        out.append(ClipData(c.clip_id, c.actor, c.emotion, c.sentence,
                            audio.frame_windows(f["mfcc"], int(f["n_frames"]))[:t],
                            lm["normalised"][:t].astype(np.float32), lm["valid"][:t].astype(bool),
                            actors[c.actor], f["rms"][:t].astype(np.float32)))
    if not out:
        raise EvpError(f"no prepared clips with landmarks in {ws.root}; run `evp prepare-dataset` first")
    return out
