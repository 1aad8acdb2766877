"""Per-actor landmark models: each actor's reference face and PCA of its normalised landmarks, made from its
prepared clips (:func:`update_actor_models`, run by ``evp prepare-dataset``) and read back by training, evaluation
and the landmark preview (:func:`load_actor`).

Kind ``"actors"`` with key = the actor's name: npz ``reference`` (68, 2) float32 (mean normalised landmarks of the
neutral clips, or of all clips when the actor has no neutral one), ``pca_mean`` (136,), ``pca_components``
(16, 136), ``pca_variance`` (16,) (see :func:`evpcli.face.normalize.actor_model`). A model is remade only when
the landmark artifacts it was made from change (its ``signature``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evpcli.errors import EvpError
from evpcli.workspace import KIND_ACTOR, KIND_LANDMARKS, Workspace, cache_key, load_npz, save_npz

FORMAT_VERSION = 1  # bump when an actor model's content changes while its clips' landmarks do not


def update_actor_models(ws: Workspace, actors: list[str]) -> list[str]:
    """(Re)compute each actor's reference landmarks and PCA from its ready clips, unless the stored model was
    made from exactly the same landmark artifacts. Returns the actors recomputed."""
    from evpcli.face.normalize import actor_model

    done = []
    for actor in actors:
        clips = ws.clips(actor=actor, status="ok")
        rows = []
        for c in clips:
            row = ws.clip_artifact(KIND_LANDMARKS, c.clip_id)
            if row is not None:
                rows.append((c, row))
        if not rows:
            continue
        signature = cache_key(*sorted(r["key"] for _, r in rows), params={"version": FORMAT_VERSION})
        current = ws.get_artifact(KIND_ACTOR, actor)
        if current is not None and isinstance(current["meta"], dict) and current["meta"].get("signature") == signature:
            continue
        frames, neutral = [], []
        for c, row in rows:
            lm = load_npz(row["path"])
            x = lm["normalised"][lm["valid"].astype(bool)]
            frames.append(x)
            if c.emotion == "neutral":
                neutral.append(x)
        model = actor_model(frames, neutral or None)
        path = ws.path(KIND_ACTOR, f"{actor}-{signature}.npz")
        save_npz(path, **model)
        meta = {"signature": signature, "n_clips": len(rows), "n_frames": int(sum(len(f) for f in frames)),
                "reference_from": "neutral" if neutral else "all", "n_neutral_clips": len(neutral)}
        old_path = current["path"] if current is not None else None
        ws.put_artifact(KIND_ACTOR, actor, path, params={"version": FORMAT_VERSION, "n_components": 16}, meta=meta)
        if old_path is not None and Path(old_path) != path and Path(old_path).exists():
            Path(old_path).unlink()
        done.append(actor)
    return done


def load_actor(ws: Workspace, actor: str) -> dict[str, Any]:
    """An actor's model: ``reference`` (68, 2) float32 (mean normalised landmarks of the neutral clips, or of all
    clips when the actor has no neutral one), ``pca_mean`` (136,), ``pca_components`` (16, 136), ``pca_variance``
    (16,) float32, plus ``meta`` (dict: n_clips, n_frames, reference_from). Raises :class:`EvpError` if missing."""
    row = ws.get_artifact(KIND_ACTOR, actor)
    if row is None:
        raise EvpError(f"no landmark model for actor {actor} in {ws.root}; run `evp prepare-dataset` first")
    return {**load_npz(row["path"]), "meta": row["meta"]}
