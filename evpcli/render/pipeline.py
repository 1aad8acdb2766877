"""``evp render`` and ``evp interpolate``: EVP's target-adaptive face synthesis end to end (paper section 3.3).

1. Speech (any format, rate, channels) -> 16 kHz mono -> MFCC windows and RMS, one per 25 fps frame.
2. Emotion -> a code: an emotion clip's clip-level code, an emotion name's mean code, moved by ``intensity``; for
   ``interpolate`` a code per frame moving from one emotion to another (:mod:`evpcli.infer`).
3. The target (a video, or a still image) -> its tracked landmarks and 3D fit (``fit-pose``, cached) and its
   analysis for the warp renderer (mouth bank + per-frame reliability, cached).
4. Identity: the reference face the audio-to-landmark network reads is the *target's own* (the mean of its
   normalised landmarks over its reliable frames, as the training actors' references are defined), so the
   predicted landmarks have the target's face shape.
5. Frontal landmarks -> each scheduled target frame by 3D-aware keypoint alignment (``face.pose.align_to_target``);
   audio longer than the target plays it forward then backward, shorter uses its first frames.
6. Render (streaming: decode -> renderer -> encoder, memory flat in the speech length) and mux the speech into an
   H.264/AAC mp4 that appears at ``out`` only when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from evpcli import audio as audio_fe
from evpcli import media
from evpcli.config import RenderConfig, SilenceGate, to_dict
from evpcli.errors import EvpError, UsageError
from evpcli.progress import Progress
from evpcli.workspace import Workspace, cache_key, load_npz, save_npz

KIND_TARGET = "targets"  # per-target analysis for the warp renderer (mouth bank, reliability, reference face)
FPS = 25.0  # the audio models' frame rate
MIN_SPEECH_SECONDS = 0.04
RENDERERS = ("warp", "neural")
PREFETCH = 8  # target frames decoded ahead of the renderer (a thread; ~0.7 MB each at 640x360)
# The landmark tracker (dlib) reads a face's lasting expression (a brow raise, a smile held over a clip) short: on the
# synthetic corpus's training clips, its per-clip mean displacement from the actor's neutral face is 0.72-0.83 of the
# ground truth's (brows 0.72-0.74, eyes 0.74-0.76, lips 0.80-0.82, jaw 0.82-0.83; the lips' speech motion 0.93-0.96;
# `benchmarks/bench_render_pipeline.py --tracker-gain`). Every landmark the models learnt from is such a reading, so a face drawn with the predicted displacement is read short a second time after rendering. The
# renderer is asked for the slow part of the displacement divided by this gain, so that the tracker reads back the
# prediction.
TRACKER_GAIN = 0.8
SLOW_SECONDS = 1.0  # the slow (lasting-expression) part of a displacement: its centred moving average over this long


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


@dataclass
class RenderResult:
    out: str
    frames: int
    seconds: float
    fps: float
    size: tuple[int, int]
    renderer: str
    emotion: dict
    model: dict
    target: dict
    stage_seconds: dict = field(default_factory=dict)
    landmarks_out: str | None = None
    guidance_out: str | None = None
    sheet: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        t = self.target
        emo = self.emotion
        from evpcli.infer import reading_phrase

        read = reading_phrase(emo)
        total = sum(self.stage_seconds.values())
        extra = "".join(f"; {k} {v}" for k, v in (("landmarks", self.landmarks_out), ("guidance", self.guidance_out),
                                                   ("sheet", self.sheet)) if v)
        return (f"wrote {self.out}: {self.frames} frames ({self.seconds:.2f} s at {self.fps:g} fps, "
                f"{self.size[0]}x{self.size[1]}), emotion {emo['description']}{read}; target {t['path']} "
                f"({t['frames']} frames, face reliable in {t['reliable_pct']:.0f} %); model {self.model['key']} "
                f"({self.model['origin']}); {self.renderer} renderer; {total:.1f} s"
                + extra + "".join(f"\nwarning: {w}" for w in self.warnings))


# --------------------------------------------------------------------------- inputs
def check_inputs(audio: str | Path, target: str | Path, out: str | Path, emotion_audio: str | Path | None = None,
                 extra_outputs: dict[str, str | Path | None] | None = None) -> None:
    """Everything that can be checked before any work: inputs exist, outputs are writable and none of them is an
    input (one line, exit 1)."""
    from evpcli.paths import check_output

    inputs = {"--audio": audio, "--target": target, "--emotion-audio": emotion_audio}
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
        key = os.path.abspath(p)
        if key in seen:
            raise EvpError(f"{option} and {seen[key]} are the same file ({p}); give two paths")
        seen[key] = option


def load_speech(path: str | Path) -> np.ndarray:
    """16 kHz mono float32 speech, at least one video frame long."""
    wav = media.load_audio(path)
    if len(wav) < MIN_SPEECH_SECONDS * 16000:
        raise EvpError(f"{path}: the speech is {1000 * len(wav) / 16000:.0f} ms long; give at least "
                       f"{1000 * MIN_SPEECH_SECONDS:.0f} ms of speech")
    return wav


# --------------------------------------------------------------------------- the target
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
                   progress: Progress | None = None) -> TargetData:
    """Fit and analyse a target (cached in the workspace per content and parameters).

    The first time, the target is decoded once for both the fit and the analysis; afterwards nothing is decoded
    here. Raises EvpError when the target has no face."""
    from evpcli.face.normalize import normalise
    from evpcli.fitpose import fit_pose, is_image, read_target
    from evpcli.render.target import analyse_target
    from evpcli.workspace import KIND_FIT, hash_file

    cfg = cfg or RenderConfig()
    progress = progress or Progress()
    target = Path(target)
    still = is_image(target)
    key = cache_key(hash_file(target), params={"fps": fps, "render": to_dict(cfg), "version": 2})
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
        fit = fit_pose(ws, target, fps=fps, progress=progress, video=video)
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


def head_motion_pose(fit, n: int, fps: float, seed: int = 0):
    """A still image's pose made to move gently for ``n`` frames: yaw, pitch and roll as sums of slow sinusoids
    (amplitudes about 5°, 3.5° and 2°, periods 2.5-7 s) around the image's own pose. Returns a PoseFit of n frames."""
    import dataclasses

    from evpcli.face.pose import rotation_from_euler

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    angles = np.zeros((n, 3))
    for axis, amp in enumerate((5.0, 3.5, 2.0)):
        for period in rng.uniform(2.5, 7.0, 2):
            angles[:, axis] += amp / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    euler = np.asarray(fit.euler_deg[:1], np.float64) + angles
    rot = rotation_from_euler(euler)
    rep = {f.name: np.repeat(np.asarray(getattr(fit, f.name))[:1], n, axis=0)
           for f in dataclasses.fields(fit) if isinstance(getattr(fit, f.name), np.ndarray)
           and getattr(fit, f.name).shape[:1] == (fit.n_frames,)}
    rep["rotation"] = rot
    rep["euler_deg"] = euler
    return dataclasses.replace(fit, **rep)


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
    # while decoding) and read back from it for the later passes
    store = None
    decoded = 0
    frames = media.iter_frames(td.path, fps, prefetch=PREFETCH)
    try:
        for k in schedule:
            k = min(int(k), td.n_frames - 1)
            while decoded <= k:
                frame = next(frames, None)
                if frame is None:
                    break
                if store is None:  # a plain ndarray view: slicing a memmap costs ~2 ms a frame in numpy 2
                    store = np.lib.format.open_memmap(tmpdir / "frames.npy", mode="w+", dtype=np.uint8,
                                                      shape=(td.n_frames, *frame.shape)).view(np.ndarray)
                store[decoded] = frame
                decoded += 1
            if store is None:
                raise EvpError(f"{td.path}: the target video has no frames")
            yield store[min(k, decoded - 1)]
    finally:
        frames.close()


# --------------------------------------------------------------------------- the pipeline
def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of a per-frame sequence (T, ...) at 25 fps to n frames over the same duration."""
    t = len(x)
    if n == t:
        return x
    src = np.arange(t) / FPS
    dst = np.arange(n) * (t / FPS) / n
    flat = x.reshape(t, -1)
    out = np.stack([np.interp(dst, src, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(n, *x.shape[1:]).astype(x.dtype)


def drive(model, td: TargetData, windows: np.ndarray, rms: np.ndarray, code: np.ndarray, fps: float = FPS,
          head_motion: bool = False, gate: SilenceGate | None = SilenceGate(), activity: np.ndarray | None = None,
          content: np.ndarray | None = None, tracker_gain: float = TRACKER_GAIN):
    """Speech windows (T, 28, 12) + emotion code -> what the renderer needs, n output frames at ``fps``:
    frontal landmarks (n, 68, 2) (canonical frame, the target's identity), adapted landmarks (n, 68, 2) and tracked
    landmarks (n, 68, 2) in target pixels, the target frame of each output frame (n,), its reliability (n,).
    ``content``: the windows' content codes if computed beforehand (:func:`evpcli.infer.content_codes`)."""
    from evpcli.face.pose import align_to_target, frame_schedule
    from evpcli.infer import predict_landmarks

    frontal = predict_landmarks(model, windows, code, td.reference, rms, gate, activity, content)  # (T, 68, 2), 25 fps
    n_out = max(1, int(round(len(frontal) * fps / FPS)))
    frontal = _resample(frontal, n_out)
    fit = td.fit
    if td.still:
        schedule = np.zeros(n_out, np.int64)
        pose = head_motion_pose(fit, n_out, fps) if head_motion else None
    else:
        schedule = frame_schedule(n_out, td.n_frames)
        pose = None
    posed = pose if pose is not None else fit
    frames = np.arange(n_out) if pose is not None else schedule
    # 3D-aware alignment: the target's own neutral face (the reference) is lifted to 3D and posed like each
    # scheduled frame (face.pose.align_to_target), and the prediction's displacement from that neutral face is posed
    # the same way (scaled to the frame's face size, turned by its rotation). Lifting each prediction to 3D on its
    # own would hand a whole clip's emotion (a constant brow raise) to the identity basis, which the target's
    # identity then replaces: measured, the landmark emotion accuracy after alignment fell to chance (12 %); this
    # way it stays at the frontal prediction's (75 % on 16 held-out synthetic clips).
    uniq, inverse = np.unique(frames, return_inverse=True)
    scale = td.reference_scale if pose is None else None
    if pose is None and td.neutral is not None and np.array_equal(uniq, np.arange(td.n_frames)):
        neutral = td.neutral  # the same fit over the same frames, done once per target (prepare_target)
    else:
        neutral = align_to_target(np.repeat(td.reference[None], len(uniq), 0), posed, uniq, fps=fps)
    # The 3D model (a few identity and expression bases) cannot draw the reference exactly: brought back to the
    # canonical frame, its posed neutral face is off the reference by a static residual (mouth corners ~3 px low,
    # the mouth ~2 px wide), which the emotion classifier reads as an expression. Put the residual back.
    residual = np.repeat(neutral_residual(neutral, td.reference), len(uniq), axis=0)
    neutral = (neutral + pose_displacement(residual, posed, uniq, td.reference, scale))[inverse]
    commanded = tracker_compensation(frontal - td.reference[None], tracker_gain, fps, td.reference)
    adapted = neutral + pose_displacement(commanded, posed, frames, td.reference, scale)
    tracked = np.asarray(fit.landmarks, np.float32)[schedule]
    return frontal, adapted, tracked, schedule, td.reliability[schedule]


def tracker_compensation(displacement: np.ndarray, gain: float = TRACKER_GAIN, fps: float = FPS,
                         reference: np.ndarray | None = None) -> np.ndarray:
    """Displacements from the reference (T, 68, 2), canonical frame -> what to draw so that the tracker reads them
    back: the slow part (centred moving average over ``SLOW_SECONDS``, edges held) divided by ``gain``, the fast part
    (speech motion, which the tracker follows) unchanged. With the ``reference`` (68, 2), lips the prediction closes
    are not pushed through each other: no inner-lip pair ends up more crossed than in the prediction (or crossed at
    all where the prediction keeps it apart). ``gain`` 1 returns the input. (T, 68, 2) float32."""
    d = np.asarray(displacement, np.float32)
    if gain == 1.0 or len(d) == 0:
        return d
    n = max(1, int(round(SLOW_SECONDS * fps)) | 1)  # odd
    padded = np.pad(d, ((n // 2, n // 2), (0, 0), (0, 0)), mode="edge")
    c = np.cumsum(np.concatenate([np.zeros((1, *d.shape[1:]), np.float64), padded], axis=0), axis=0)
    slow = ((c[n:] - c[:-n]) / n).astype(np.float32)
    out = d + (1.0 / gain - 1.0) * slow
    if reference is not None:
        upper, lower = [61, 62, 63], [67, 66, 65]
        ref = np.asarray(reference, np.float32)
        gap_pred = (ref[lower, 1] - ref[upper, 1])[None] + d[:, lower, 1] - d[:, upper, 1]  # (T, 3)
        gap_out = (ref[lower, 1] - ref[upper, 1])[None] + out[:, lower, 1] - out[:, upper, 1]
        out[:, lower, 1] += np.maximum(np.minimum(gap_pred, 0.0) - gap_out, 0.0)
    return out.astype(np.float32)


def neutral_residual(posed_neutral: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """What the posed neutral faces (T, 68, 2) target pixels miss of the reference (68, 2): the reference minus
    their mean in the canonical frame (similarity-normalised like every landmark the models read) -> (1, 68, 2)."""
    from evpcli.face.normalize import normalise

    normalised, _ = normalise(np.asarray(posed_neutral, np.float32))
    return (np.asarray(reference, np.float32) - normalised.mean(axis=0))[None]


def pose_displacement(displacement: np.ndarray, fit, frames: np.ndarray, reference: np.ndarray,
                      reference_scale: float | None = None) -> np.ndarray:
    """Displacements (T, 68, 2) in the canonical frontal frame -> target pixels of each frame: scaled from the
    canonical face's size to the frame's (the 3D fit's scale over the reference's own lifted scale, given as
    ``reference_scale`` or fitted here) and turned by the frame's rotation (its image-plane 2x2 block: roll, and the
    foreshortening of yaw and pitch). (T, 68, 2) float32."""
    if reference_scale is None:
        from evpcli.face.pose import fit_landmarks

        lifted = fit_landmarks(np.asarray(reference, np.float64)[None], model=fit.model, free_rotation=False)
        reference_scale = float(lifted.scale[0])
    k = np.asarray(fit.scale, np.float64)[frames] / float(reference_scale)
    r = np.asarray(fit.rotation, np.float64)[frames][:, :2, :2]
    return (k[:, None, None] * np.einsum("tij,tnj->tni", r, np.asarray(displacement, np.float64))).astype(np.float32)


def _run(ws: Workspace, speech: str | Path, target: str | Path, out: str | Path,
         code_for: Callable[[object, int], object], *, renderer: str = "warp", head_motion: bool = False,
         fps: float = FPS, model_path: str | Path | None = None, landmarks_out: str | Path | None = None,
         guidance_out: str | Path | None = None, device: str = "auto", progress: Progress | None = None,
         gate: SilenceGate | None = SilenceGate()) -> RenderResult:
    from evpcli.models import load_audio2lm

    progress = progress or Progress()
    if renderer not in RENDERERS:
        raise EvpError(f"unknown renderer {renderer!r}; use one of {', '.join(RENDERERS)}")
    if not 1 <= fps <= 60:
        raise UsageError(f"--fps must be between 1 and 60, got {fps:g}")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    wav = load_speech(speech)
    windows = audio_fe.speech_windows(wav)
    rms = audio_fe.frame_rms(wav, len(windows))
    warnings = []
    if float(np.sqrt(np.mean(wav ** 2))) < 1e-4:
        warnings.append("the speech is silent; the mouth stays closed")
    times["audio"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
    times["model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    from evpcli.infer import content_codes

    # the speech's content codes (the network's costliest part, numpy releases the GIL) are computed in a thread
    # while the target is prepared (a first render: decoding, tracking and fitting it)
    with ThreadPoolExecutor(1, thread_name_prefix="evp-content") as pool:
        content = pool.submit(content_codes, model, windows)
        td = prepare_target(ws, target, fps, progress=progress)
        times["target"] = time.perf_counter() - t0
        t0 = time.perf_counter()  # what the content codes still take after the target is ready: landmarks time
        content = content.result()

    emo = code_for(model, len(windows))
    from evpcli.infer import ood_warning

    if getattr(emo, "source", None) == "audio" and ood_warning(emo):
        warnings.append(ood_warning(emo))
    from evpcli.infer import voice_activity

    frontal, adapted, tracked, schedule, reliability = drive(model, td, windows, rms, emo.code, fps, head_motion,
                                                              gate, voice_activity(wav, len(windows), gate), content)
    n_out = len(frontal)
    fit = td.fit
    times["landmarks"] = time.perf_counter() - t0

    if landmarks_out is not None:
        save_npz(landmarks_out, frontal=frontal, adapted=adapted, tracked=tracked, schedule=schedule,
                 reliability=reliability, fps=np.float32(fps))
    draw = _make_renderer(ws, renderer, td, device)
    t0 = time.perf_counter()
    tmpdir = Path(tempfile.mkdtemp(prefix=".evp-render-", dir=Path(out).parent))
    try:
        def rendered() -> Iterator[np.ndarray]:
            with progress.task("render", total=n_out, unit="frames") as bar:
                for i, frame in enumerate(_target_frames(td, schedule, fps, tmpdir)):
                    if i >= n_out:
                        break
                    yield draw.render(frame, tracked[i], adapted[i], float(reliability[i]))
                    bar.advance(1)

        written = media.write_video(out, rendered(), fps=fps, audio=wav)
        times["render"] = time.perf_counter() - t0
        if guidance_out is not None:
            from evpcli.face.guidance import guidance_map

            def guidance() -> Iterator[np.ndarray]:
                for i, frame in enumerate(_target_frames(td, schedule, fps, tmpdir)):
                    if i >= n_out:
                        break
                    yield np.repeat(guidance_map(frame, adapted[i])[..., None], 3, axis=2)

            media.write_video(guidance_out, guidance(), fps=fps, audio=wav)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    size = (int(fit.size[0]), int(fit.size[1])) if not td.still else (int(td.frames.shape[2]), int(td.frames.shape[1]))
    target_info = {"path": str(td.path), "key": fit.key, "frames": td.n_frames, "still": td.still,
                   "face_found_pct": round(100.0 * float(np.mean(fit.detected)), 1),
                   "reliable_pct": round(100.0 * float(np.mean(td.reliability > 0.5)), 1)}
    if target_info["reliable_pct"] < 100:
        lost = int(np.sum(reliability <= 0.5))
        if lost:
            warnings.append(f"the face is unreliable (occluded or lost) in {lost} of {n_out} output frames; those "
                            "frames pass through unchanged")
    return RenderResult(str(written), n_out, n_out / fps, fps, size, renderer, emo.to_dict(), model.source.to_dict(),
                        target_info, {k: round(v, 3) for k, v in times.items()},
                        str(landmarks_out) if landmarks_out else None, str(guidance_out) if guidance_out else None,
                        None, warnings)


def _make_renderer(ws: Workspace, name: str, td: TargetData, device: str):
    """The per-frame renderer: the warp renderer with the target's mouth bank, or the target's trained neural
    renderer."""
    from evpcli.render.mouth import MouthBank
    from evpcli.render.warp import WarpRenderer

    bank = MouthBank.load(td.bank_path) if td.bank_path is not None and td.bank_path.exists() else None
    if name == "neural":
        from evpcli.models import load_renderer
        from evpcli.render.neural import NeuralRenderer

        bundle = load_renderer(ws, td.path, device=device)
        return NeuralRenderer(bundle, warp=WarpRenderer(bank, RenderConfig()) if bundle.config.hybrid else None)
    return WarpRenderer(bank, RenderConfig())


def render(ws: Workspace, audio: str | Path, target: str | Path, out: str | Path, emotion: str | None = None,
           emotion_audio: str | Path | None = None, intensity: float = 1.0, renderer: str = "warp",
           head_motion: bool = False, fps: float = FPS, model_path: str | Path | None = None,
           landmarks_out: str | Path | None = None, guidance_out: str | Path | None = None, device: str = "auto",
           progress: Progress | None = None) -> RenderResult:
    """Write ``out`` (mp4): the target person saying ``audio`` with the emotion of ``emotion_audio`` (a clip) or
    ``emotion`` (a name), scaled by ``intensity``. See the module docstring for the steps."""
    from evpcli.infer import emotion_code

    if (emotion is None) == (emotion_audio is None):
        raise EvpError("give exactly one of --emotion NAME or --emotion-audio FILE")
    check_inputs(audio, target, out, emotion_audio, {"--landmarks-out": landmarks_out, "--guidance-out": guidance_out})

    def code_for(model, n):
        return emotion_code(model, emotion, emotion_audio, intensity)

    return _run(ws, audio, target, out, code_for, renderer=renderer, head_motion=head_motion, fps=fps,
                model_path=model_path, landmarks_out=landmarks_out, guidance_out=guidance_out, device=device,
                progress=progress)


def _emotion_arg(value: str) -> tuple[str | None, str | None]:
    """An interpolate endpoint: an emotion name, or a path to an emotion clip -> (name, path)."""
    from evpcli.config import EMOTIONS

    if value.strip().lower() in EMOTIONS:
        return value.strip().lower(), None
    if Path(value).exists():
        return None, value
    raise EvpError(f"{value!r} is neither an emotion ({', '.join(EMOTIONS)}) nor an existing audio file")


def interpolate(ws: Workspace, audio: str | Path, target: str | Path, out: str | Path, from_emotion: str,
                to_emotion: str, alpha: float | None = None, intensity: float = 1.0, renderer: str = "warp",
                head_motion: bool = False, fps: float = FPS, model_path: str | Path | None = None,
                landmarks_out: str | Path | None = None, guidance_out: str | Path | None = None,
                sheet: str | Path | None = None, sheet_steps: int = 5, device: str = "auto",
                progress: Progress | None = None) -> RenderResult:
    """Render with the emotion code moving from ``from_emotion`` to ``to_emotion`` over the clip (the paper's
    editing, ``alpha * E_from + (1 - alpha) * E_to`` with alpha going 1 -> 0), or fixed at ``alpha``. Each end is an
    emotion name or an emotion clip. ``sheet``: also a contact sheet PNG, one row per alpha step."""
    from evpcli.infer import emotion_code, mix_emotions

    a_name, a_path = _emotion_arg(from_emotion)
    b_name, b_path = _emotion_arg(to_emotion)
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha:g}")
    check_inputs(audio, target, out, a_path, {"--landmarks-out": landmarks_out, "--guidance-out": guidance_out,
                                              "--sheet": sheet})
    if b_path is not None:
        check_inputs(audio, target, out, b_path)

    def code_for(model, n):
        a = emotion_code(model, a_name, a_path, intensity)
        b = emotion_code(model, b_name, b_path, intensity)
        weights = np.full(n, alpha, np.float32) if alpha is not None else np.linspace(1.0, 0.0, n, dtype=np.float32)
        mixed = mix_emotions(a, b, weights)
        mixed.description = (f"{alpha:.2f} x {a.description} + {1 - alpha:.2f} x {b.description}" if alpha is not None
                             else f"{a.description} -> {b.description}")
        return mixed

    result = _run(ws, audio, target, out, code_for, renderer=renderer, head_motion=head_motion, fps=fps,
                  model_path=model_path, landmarks_out=landmarks_out, guidance_out=guidance_out, device=device,
                  progress=progress)
    if sheet is not None:
        from evpcli.models import load_audio2lm

        model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
        a = emotion_code(model, a_name, a_path, intensity)
        b = emotion_code(model, b_name, b_path, intensity)
        rows = []
        for w in np.linspace(1.0, 0.0, max(2, sheet_steps)):
            rows.append((f"alpha {w:.2f}", mix_emotions(a, b, float(w)).code))
        rows[0] = (f"{a.description}", rows[0][1])
        rows[-1] = (f"{b.description}", rows[-1][1])
        result.sheet = str(emotion_sheet(ws, audio, target, sheet, rows, model_path=model_path, device=device))
    return result


def emotion_sheet(ws, audio: str | Path, target: str | Path, out: str | Path, codes: list[tuple[str, np.ndarray]],
                  columns: int = 6, side: int = 128, model_path=None, device: str = "auto") -> Path:
    """One row per (label, emotion code), ``columns`` moments of ``audio`` spread over its loud part."""
    from evpcli.models import load_audio2lm
    from evpcli.render.mouth import MouthBank
    from evpcli.render.sheet import face_crop, write_sheet
    from evpcli.render.warp import WarpRenderer

    model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
    td = prepare_target(ws, target)
    wav = load_speech(audio)
    windows = audio_fe.speech_windows(wav)
    rms = audio_fe.frame_rms(wav, len(windows))
    from evpcli.infer import voice_activity

    activity = voice_activity(wav, len(windows))
    loud = np.flatnonzero(rms >= np.percentile(rms, 40))
    lo, hi = (loud[0], loud[-1]) if len(loud) else (0, len(windows) - 1)
    cols = np.unique(np.linspace(lo, hi, columns).round().astype(int))
    bank = MouthBank.load(td.bank_path) if td.bank_path is not None and td.bank_path.exists() else None
    rows, labels, frames_needed = [], [], None
    driven = []
    for label, code in codes:
        _, adapted, tracked, schedule, reliability = drive(model, td, windows, rms, code, activity=activity)
        driven.append((label, adapted, tracked, schedule, reliability))
        frames_needed = schedule[cols]
    wanted = {int(k) for k in frames_needed}
    if td.frames is not None:
        frames = {k: td.frames[k] for k in wanted}
    else:
        frames = {k: f for k, f in enumerate(media.iter_frames(td.path, FPS)) if k in wanted}
    for label, adapted, tracked, schedule, reliability in driven:
        cells = []
        for c in cols:
            renderer = WarpRenderer(bank)
            frame = frames[int(schedule[c])]
            img = renderer.render(frame, tracked[c], adapted[c], float(reliability[c]))
            cells.append(face_crop(img, tracked[c], side))
        rows.append(cells)
        labels.append(label)
    return write_sheet(out, rows, labels, [f"{c / 25.0:.2f} s" for c in cols])
