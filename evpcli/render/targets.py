"""The render stage's targets: a target video or photo prepared once and cached in the workspace (its 3D fit, the
engines' analysis: mouth bank and per-frame reliability, the neutral reference face the network reads, that face
aligned onto every frame), and its frames read back in the order a render needs them (forward, or back and forth
through a spill file for speech longer than the video).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli import media
from evpcli.config import FPS, RenderConfig, to_dict
from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.workspace import KIND_TARGET, Workspace, cache_key, load_npz, save_npz


SPILL_MARGIN = 64 << 20  # bytes left free on the output's disk after the frame spill (ping-pong renders)


PREFETCH = 8  # target frames decoded ahead of the renderer (a thread; ~0.7 MB each at 640x360)


@dataclass
class TargetData:
    """A target prepared for rendering: its fit (pose per frame, tracked landmarks), its analysis, the reference
    face the network reads, and whether it is a still image."""

    path: Path
    fit: object  # evpcli.fitpose.FitResult
    reliability: np.ndarray  # (N,) float32 in [0, 1]
    bank_path: Path | None
    reference: np.ndarray  # (68, 2) float32, canonical 256 frame
    still: bool
    frames: np.ndarray | None = None  # decoded frames when they were needed anyway (still image, first fit)
    neutral: np.ndarray | None = None  # (N, 68, 2) the reference aligned onto every target frame (cached)
    reference_scale: float | None = None  # the 3D fit's scale of the reference lifted frontally (cached)

    @property
    def n_frames(self) -> int:
        return int(self.fit.n_frames)


def target_reference(normalised: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A person's reference face from their normalised landmarks (T, 68, 2): the per-point mean over the valid
    (tracked, unoccluded) frames -> (68, 2) float32.

    This is the definition the audio-to-landmark network was trained with (``prepare-dataset``: an actor's reference
    is the mean of its neutral clips' normalised landmarks, mouth half open in speech), and the one the evaluation's
    landmark emotion classifier reads displacements from. A reference with the mouth and chin taken from the most
    closed-mouth frames (an earlier version) differed from the training definition by 3-7 px on the lips and jaw
    of a talking target: the prediction kept that offset, and the classifier read it as an emotion (happy and
    neutral as contempt, on predicted landmarks of held-out synthetic speech)."""
    lm = np.asarray(normalised, np.float64)
    v = np.asarray(valid, bool)
    if not v.any():
        v = np.ones(len(lm), bool)
    return lm[v].mean(axis=0).astype(np.float32)


def prepare_target(ws: Workspace, target: str | Path, fps: float = FPS, cfg: RenderConfig | None = None,
                   progress: Progress | None = None, face: str = "largest") -> TargetData:
    """Fit and analyse a target (cached in the workspace per content and parameters).

    The first time, the target is decoded once for both the fit and the analysis; afterwards nothing is decoded
    here. Raises EvpError when the target has no face."""
    from evpcli.face.normalize import normalise
    from evpcli.fitpose import fit_pose, is_image, read_target
    from evpcli.engines.target import analyse_target
    from evpcli.workspace import KIND_FIT, hash_file

    cfg = cfg or RenderConfig()
    progress = progress or Progress()
    target = Path(target)
    still = is_image(target)
    from evpcli.face.landmarks import parse_face

    face = parse_face(face)
    params = {"fps": fps, "render": to_dict(cfg), "version": 3}  # 3: structural occlusion evidence, no blurred bank crops
    if face != "largest":
        params["face"] = face
    key = cache_key(hash_file(target), params=params)
    row = ws.get_artifact(KIND_TARGET, key)
    video = None
    fit = None
    if row is not None:
        fit_row = ws.get_artifact(KIND_FIT, row["meta"]["fit"]) if isinstance(row["meta"], dict) else None
        if fit_row is not None:
            from evpcli.fitpose import FitResult

            fit = FitResult.load(fit_row["path"], key=fit_row["key"])
    if fit is None:
        from evpcli.face.landmarks import preload_models

        preload_models()  # the tracker's models load while the target decodes
        video = read_target(target, fps)
        fit = fit_pose(ws, target, fps=fps, progress=progress, video=video, face=face)
        row = None  # the analysis follows the fit
    if not np.asarray(fit.valid).any():
        raise EvpError(f"{target}: no usable face in any frame; use a video where the face is visible")
    if row is not None:
        d = load_npz(row["path"])
        bank_path = Path(str(d["bank_path"])) if str(d["bank_path"]) else None
        if bank_path is not None and not bank_path.is_absolute():
            bank_path = ws.root / bank_path
        reference = d["reference"].astype(np.float32)
        if "neutral" in d:  # analyses stored before the alignment was cached compute it at each render
            neutral, reference_scale = d["neutral"].astype(np.float32), float(d["reference_scale"])
        else:
            neutral, reference_scale = None, None
        if video is None and still:  # a photo is its one frame: read it (cheap) rather than decode it per render
            video = read_target(target, fps)
        return TargetData(target, fit, d["reliability"].astype(np.float32), bank_path, reference, still,
                          video.frames if video is not None else None, neutral, reference_scale)
    if video is None:
        video = read_target(target, fps)
    with progress.task("analyse target", total=1, unit="targets") as bar:
        bank, reliability = analyse_target(iter(video.frames), fit.landmarks, fit.valid, cfg)
        bar.advance(1)
    reliability = (reliability * np.asarray(fit.valid, np.float32)).astype(np.float32)
    normalised, _ = normalise(fit.landmarks)
    reference = target_reference(normalised, np.asarray(fit.valid) & (reliability > 0.5))
    neutral, reference_scale = aligned_reference(reference, fit, fps)
    bank_path = bank.save(ws.path(KIND_TARGET, f"bank-{key}.npz")) if bank is not None else None
    path = save_npz(ws.path(KIND_TARGET, f"target-{key}.npz"), reliability=reliability, reference=reference,
                    bank_path=np.array(os.path.relpath(bank_path, ws.root) if bank_path else ""),
                    neutral=neutral, reference_scale=np.float64(reference_scale))
    ws.put_artifact(KIND_TARGET, key, path, params={"fps": fps, "render": to_dict(cfg)},
                    meta={"target": str(target), "fit": fit.key, "frames": int(fit.n_frames),
                          "reliable_pct": round(100.0 * float((reliability > 0.5).mean()), 1)})
    return TargetData(target, fit, reliability, bank_path, reference, still, video.frames, neutral, reference_scale)


def aligned_reference(reference: np.ndarray, fit, fps: float) -> tuple[np.ndarray, float]:
    """What :func:`drive` computes from the target alone, once per target: its reference face aligned onto every
    frame (N, 68, 2) float32 pixels (:func:`evpcli.face.pose.align_to_target` over all N frames, as drive does when
    the schedule visits them all), and the scale of the reference's frontal 3D fit (:func:`pose_displacement`).
    Two whole-sequence fits: about 0.5 s of a cached render on the busy machine."""
    from evpcli.face.pose import align_to_target, fit_landmarks

    n = int(fit.n_frames)
    neutral = align_to_target(np.repeat(np.asarray(reference)[None], n, 0), fit, np.arange(n), fps=fps)
    lifted = fit_landmarks(np.asarray(reference, np.float64)[None], model=fit.model, free_rotation=False)
    return neutral, float(lifted.scale[0])


def _target_frames(td: TargetData, schedule: np.ndarray, fps: float, tmpdir: Path) -> Iterator[np.ndarray]:
    """Target frames in output order (``schedule`` (T,) target frame per output frame).

    A still image repeats its one frame; a video read forward once is streamed from the decoder; a ping-pong
    schedule (audio longer than the video) spills the decoded frames to a raw file once and reads them back."""
    if td.frames is not None and (td.still or len(td.frames) == td.n_frames):
        frames = td.frames
        for k in schedule:
            yield frames[int(k)]
        return
    forward = bool(np.all(np.diff(schedule) == 1)) and (len(schedule) == 0 or schedule[0] == 0)
    if forward:
        for k, frame in enumerate(media.iter_frames(td.path, fps, prefetch=PREFETCH)):
            if k >= len(schedule):
                return
            yield frame
        return
    # ping-pong: each frame is decoded once, spilled to a raw file as it comes (the first forward pass is served
    # while decoding) and read back from it for the later passes. Plain writes and reads, not a memory map: a full
    # disk then raises an error instead of killing the process with SIGBUS; the space is checked first.
    spill = None
    shape = None
    decoded = 0
    frames = media.iter_frames(td.path, fps, prefetch=PREFETCH)
    try:
        for k in schedule:
            k = min(int(k), td.n_frames - 1)
            while decoded <= k:
                frame = next(frames, None)
                if frame is None:
                    break
                if spill is None:
                    shape = frame.shape
                    need = td.n_frames * frame.nbytes
                    free = shutil.disk_usage(tmpdir).free
                    if need > free - SPILL_MARGIN:
                        raise EvpError(f"no space for the target's frames beside the output: {need / 1e6:.0f} MB "
                                       f"needed in {tmpdir.parent}, {free / 1e6:.0f} MB free; free some space or "
                                       "write --out to another disk")
                    spill = open(tmpdir / "frames.raw", "w+b")
                try:
                    spill.seek(decoded * frame.nbytes)
                    spill.write(np.ascontiguousarray(frame).tobytes())
                except OSError as exc:
                    raise EvpError(f"cannot spill the target's frames beside the output ({exc.strerror or exc}); "
                                   "free some space or write --out to another disk") from None
                decoded += 1
                if decoded - 1 == k:
                    yield frame
                    break
            else:
                if spill is None:
                    raise EvpError(f"{td.path}: the target video has no frames")
                j = min(k, decoded - 1)
                size = int(np.prod(shape))
                spill.seek(j * size)
                yield np.frombuffer(spill.read(size), np.uint8).reshape(shape)
                continue
            if spill is None:
                raise EvpError(f"{td.path}: the target video has no frames")
            if decoded - 1 != k:  # the video ended before frame k: its last frame
                size = int(np.prod(shape))
                spill.seek((decoded - 1) * size)
                yield np.frombuffer(spill.read(size), np.uint8).reshape(shape)
    finally:
        frames.close()
        if spill is not None:
            spill.close()


def own_expression(td: TargetData) -> dict[str, float]:
    """The target's own lasting expression that :func:`drive` takes away (emotion -> prototype coefficient; empty
    when the target's face reads neutral)."""
    from evpcli.face.expression import estimate_expression

    return {k: round(v, 2) for k, v in estimate_expression(td.reference).coefficients.items() if v > 0}


SPILL_PREFIX = ".evp-render-"


OWNER = ".owner"


def _hold(folder: Path):
    """Mark ``folder`` as this process's for as long as the returned file stays open (an flock: the kernel drops it
    when the process dies, ``kill -9`` included), so that later runs can tell a live render's folder from a dead
    one's."""
    import fcntl

    f = open(folder / OWNER, "w")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return f


def remove_stale_spills(parent: Path, older_than: float = 600.0) -> list[Path]:
    """Remove the temporary folders (``.evp-render-*``: frame spills, partial outputs) that renders killed before
    their cleanup left in ``parent``: those whose owner lock no live process holds (and, for folders of versions
    without the lock, those untouched for ``older_than`` seconds). Returns what was removed."""
    import fcntl

    removed = []
    for folder in Path(parent).glob(SPILL_PREFIX + "*"):
        if not folder.is_dir():
            continue
        lock = folder / OWNER
        try:
            if lock.exists():
                with open(lock, "a") as f:
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live render holds it
            elif time.time() - folder.stat().st_mtime < older_than:
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed

