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
from evpcli.face.pose import moving_average
from evpcli.workspace import Workspace, cache_key, load_npz, save_npz

KIND_TARGET = "targets"  # per-target analysis for the warp renderer (mouth bank, reliability, reference face)
FPS = 25.0  # the audio models' frame rate
MIN_SPEECH_SECONDS = 0.04
RENDERERS = ("warp", "neural")
CONTENT_CHUNK = 250  # speech windows (10 s) per content-code batch: progress in seconds of speech, the same codes
CRF = 15  # x264's constant rate factor of the output (0 lossless .. 51 worst; 15: visually lossless)
PRESET = "veryfast"  # x264's speed/size trade-off
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
SPILL_MARGIN = 64 << 20  # bytes left free on the output's disk after the frame spill (ping-pong renders)
PREFETCH = 8  # target frames decoded ahead of the renderer (a thread; ~0.7 MB each at 640x360)
# The landmark tracker (dlib) reads a face's lasting expression (a brow raise, a smile held over a clip) short: on the
# synthetic corpus's training clips, its per-clip mean displacement from the actor's neutral face is 0.72-0.83 of the
# ground truth's (brows 0.72-0.74, eyes 0.74-0.76, lips 0.80-0.82, jaw 0.82-0.83; the lips' speech motion 0.93-0.96;
# `benchmarks/bench_render_pipeline.py --tracker-gain`). Every landmark the models learnt from is such a reading, so a face drawn with the predicted displacement is read short a second time after rendering. The
# renderer is asked for the slow part of the displacement divided by this gain, so that the tracker reads back the
# prediction.
TRACKER_GAIN = 0.8
SLOW_SECONDS = 1.0  # the slow (lasting-expression) part of a displacement: its centred moving average over this long


def _keep_tracked() -> np.ndarray:
    """(68,) 1 where a commanded landmark keeps the target frame's fast motion (:func:`follow_tracked`): the brows,
    the eyes and the nose."""
    from evpcli.face.parts import BROWS, EYES, NOSE_BASE, NOSE_BRIDGE

    fast = np.zeros(68, np.float64)
    fast[np.concatenate([BROWS, EYES, NOSE_BRIDGE, NOSE_BASE])] = 1.0
    return fast


def _jaw_follow() -> np.ndarray:
    """(17,) how much of the lower lip's commanded motion each jaw-line point takes: 1 at the chin, falling to 0 by
    the ears (the jaw turns about its hinge), from the canonical face."""
    from evpcli.face.normalize import TEMPLATE
    from evpcli.face.parts import JAW

    y = np.asarray(TEMPLATE, np.float64)[JAW, 1]
    return np.clip((y - y[2]) / (y[8] - y[2]), 0.0, 1.0) ** 0.7


KEEP_FAST = _keep_tracked()
JAW_FOLLOW = _jaw_follow()


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
                f"({t['frames']} frames, face reliable in {t['reliable_pct']:.0f} %{_own(t)}); model {self.model['key']} "
                f"({self.model['origin']}); {self.renderer} renderer; {total:.1f} s"
                + extra + "".join(f"\nwarning: {w}" for w in self.warnings))


def _own(target: dict) -> str:
    own = target.get("own_expression") or {}
    if not own:
        return ""
    return "; its own expression " + ", ".join(f"{k} {v:.1f}" for k, v in own.items()) + " replaced"


# --------------------------------------------------------------------------- inputs
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


def check_encoding(crf: int, preset: str) -> None:
    """Usage errors (exit 2) for an encoder setting out of range."""
    if not 0 <= int(crf) <= 51:
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
                   progress: Progress | None = None, face: str = "largest") -> TargetData:
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
    from evpcli.face.landmarks import parse_face

    face = parse_face(face)
    params = {"fps": fps, "render": to_dict(cfg), "version": 2}
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


def head_motion_pose(fit, n: int, fps: float, seed: int = 0):
    """A still image's pose made to move gently for ``n`` frames: yaw, pitch and roll as sums of slow sinusoids
    (amplitudes about 5°, 3.5° and 2°, periods 2.5-7 s) around the image's own pose, and a sway of the head in the
    image (about 2 % and 1.2 % of the face width). Returns a PoseFit of n frames."""
    import dataclasses

    from evpcli.face.pose import rotation_from_euler

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    angles = np.zeros((n, 3))
    for axis, amp in enumerate((3.0, 2.5, 2.5)):
        for period in rng.uniform(2.5, 7.0, 2):
            angles[:, axis] += amp / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    euler = np.asarray(fit.euler_deg[:1], np.float64) + angles
    rot = rotation_from_euler(euler)
    rep = {f.name: np.repeat(np.asarray(getattr(fit, f.name))[:1], n, axis=0)
           for f in dataclasses.fields(fit) if isinstance(getattr(fit, f.name), np.ndarray)
           and getattr(fit, f.name).shape[:1] == (fit.n_frames,)}
    rep["rotation"] = rot
    rep["euler_deg"] = euler
    # and a gentle sway of the whole head in the image (about 2 % of the face width sideways, 1.2 % up and down):
    # a head that only turns about a fixed point looks pinned
    lm = np.asarray(fit.landmarks, np.float64)[0]
    face_w = float(np.linalg.norm(lm[16] - lm[0]))
    sway = np.zeros((n, 2))
    for axis, amp in enumerate((0.035 * face_w, 0.02 * face_w)):
        for period in rng.uniform(3.0, 7.0, 2):
            sway[:, axis] += amp / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    if "translation" in rep:
        rep["translation"] = rep["translation"] + sway
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
          content: np.ndarray | None = None, tracker_gain: float = TRACKER_GAIN, real_amplitude: bool = True):
    """Speech windows (T, 28, 12) + emotion code -> what the renderer needs, n output frames at ``fps``:
    frontal landmarks (n, 68, 2) (canonical frame, the target's identity), adapted landmarks (n, 68, 2) and tracked
    landmarks (n, 68, 2) in target pixels, the target frame of each output frame (n,), its reliability (n,).
    ``content``: the windows' content codes if computed beforehand (:func:`evpcli.infer.content_codes`);
    ``real_amplitude``: the emotion's lasting expression at real amplitudes (:mod:`evpcli.face.amplitude`), else the
    network's own."""
    from evpcli.face.pose import align_to_target, frame_schedule
    from evpcli.infer import expressive_landmarks, predict_landmarks

    from evpcli.face.expression import neutral_reference

    # the network reads the target's neutral face (its own expression taken away: face.expression)
    reference, reading = neutral_reference(td.reference)
    expression = reading.displacement
    # the emotion's lasting expression at real amplitudes (face.amplitude): (T, 68, 2), 25 fps
    predict = expressive_landmarks if real_amplitude else predict_landmarks
    frontal = predict(model, windows, code, reference, rms, gate, activity, content)
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
    # The target's own lasting expression (a grin, raised brows) is not part of its neutral face: taken away here
    # (posed like every displacement), so the command replaces it instead of adding to it.
    residual -= expression[None]
    neutral = (neutral + pose_displacement(residual, posed, uniq, td.reference, scale))[inverse]
    commanded = tracker_compensation(frontal - reference[None], tracker_gain, fps, reference)
    adapted = neutral + pose_displacement(commanded, posed, frames, td.reference, scale)
    tracked = np.asarray(fit.landmarks, np.float32)[schedule]
    if pose is None:
        adapted = follow_tracked(adapted, neutral, tracked, fps, still=td.still)
    return frontal, adapted, tracked, schedule, td.reliability[schedule]


def _face_words(face: str) -> str:
    if face in ("largest", "left", "right"):
        return {"largest": "largest one", "left": "leftmost one", "right": "rightmost one"}[face]
    if face.isdigit():
        return f"face {face} from the left"
    return f"face at {face}"


def own_expression(td: TargetData) -> dict[str, float]:
    """The target's own lasting expression that :func:`drive` takes away (emotion -> prototype coefficient; empty
    when the target's face reads neutral)."""
    from evpcli.face.expression import estimate_expression

    return {k: round(v, 2) for k, v in estimate_expression(td.reference).coefficients.items() if v > 0}


def follow_tracked(adapted: np.ndarray, neutral: np.ndarray, tracked: np.ndarray, fps: float = FPS,
                   still: bool = False) -> np.ndarray:
    """The commanded landmarks (n, 68, 2) pixels, drawn relative to what the target frame shows (``tracked``).

    ``adapted`` = the target's posed neutral face (``neutral``) + the posed command. The 3D alignment places that
    neutral face a fraction of a pixel off the tracked one, differently in every frame (0.3-0.7 px of jitter, ~1 px
    of bias on carphone): drawn as is, every pixel of the face is resampled (softer) and wobbles, and a global offset
    drags the neck and hair along. So, per frame:

    1. the neutral face and the command are moved onto the tracked face by the similarity that fits the neutral
       face's stable points (eye corners, nose) onto the tracked ones;
    2. the upper face (brows, eyes, nose) keeps the tracked face's fast motion (blinks, the tracker's own reading
       of the frame) and takes the command in place of the target's *lasting* expression (its displacement from
       the neutral face averaged over ``SLOW_SECONDS``; a still image has only that);
    3. the jaw line stays where the tracker sees the face end (the 3D model's neutral outline is off it by a pixel
       or two, which would drag the background, hair and collar beside it) and follows the lower lip's commanded
       motion (the jaw opening), fully at the chin, not at all by the ears;
    4. the lips are the command's (the speech replaces the target's), centred where the target's mouth lastingly is.

    Where the command equals the target, the displacement is zero: the warp leaves those pixels as they are."""
    from evpcli.face.normalize import STABLE_POINTS, apply_transform, similarity_fit

    STABLE = list(STABLE_POINTS)

    a = np.asarray(adapted, np.float64)
    nt = np.asarray(neutral, np.float64)
    t = np.asarray(tracked, np.float64)
    sim = similarity_fit(nt[:, STABLE], t[:, STABLE])  # (n, 2, 3)
    a = apply_transform(a, sim)
    nt = apply_transform(nt, sim)
    r = t - nt  # the target's own expression (and the tracker's reading) over its neutral face, per frame
    if still or len(r) < 3:
        slow = np.repeat(r.mean(0, keepdims=True), len(r), 0)
    else:
        slow = moving_average(r, max(1, int(round(SLOW_SECONDS * fps)) | 1))
    out = a + KEEP_FAST[None, :, None] * (r - slow)
    # the mouth where the target's mouth is: the lasting offset of its centre (the 3D model places a turned head's
    # mouth a few pixels off) is kept, its shape is the command's
    mouth = np.arange(48, 68)
    out[:, mouth] += slow[:, mouth].mean(axis=1, keepdims=True)
    jaw = np.arange(17)
    out[:, jaw] = t[:, jaw] + JAW_FOLLOW[None, :, None] * (out[:, 57:58] - t[:, 57:58])
    return out.astype(np.float32)


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
    slow = moving_average(d, max(1, int(round(SLOW_SECONDS * fps)) | 1)).astype(np.float32)  # odd window
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
         gate: SilenceGate | None = SilenceGate(), crf: int = CRF, preset: str = PRESET,
         face: str = "largest") -> RenderResult:
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
    done = [0]  # windows whose content codes are computed (the thread counts, this thread shows it)

    def content_in_chunks():
        parts = []
        for i in range(0, len(windows), CONTENT_CHUNK):
            part = content_codes(model, windows[i:i + CONTENT_CHUNK])
            if part is None:  # a torch model computes them in its forward pass
                return None
            parts.append(part)
            done[0] = min(len(windows), i + CONTENT_CHUNK)
        return np.concatenate(parts) if parts else None

    with ThreadPoolExecutor(1, thread_name_prefix="evp-content") as pool:
        content = pool.submit(content_in_chunks)
        td = prepare_target(ws, target, fps, progress=progress, face=face)
        times["target"] = time.perf_counter() - t0
        t0 = time.perf_counter()  # what the content codes still take after the target is ready: landmarks time
        if not content.done():  # long speech: show its progress in seconds of speech
            total = len(windows) / FPS
            with progress.task("speech", total=int(np.ceil(total)), unit="s of speech") as bar:
                shown = 0
                while not content.done():
                    now = int(done[0] / FPS)
                    if now > shown:
                        bar.advance(now - shown)
                        shown = now
                    time.sleep(0.1)
                bar.advance(max(0, int(np.ceil(total)) - shown))
        content = content.result()

    emo = code_for(model, len(windows))
    from evpcli.infer import ood_warning

    if getattr(emo, "source", None) == "audio" and ood_warning(emo):
        warnings.append(ood_warning(emo))
    from evpcli.infer import voice_activity

    # an emotion clip's code is drawn at real amplitudes only when the classifier is sure of its emotion
    sure = getattr(emo, "source", None) != "audio" or bool(getattr(emo, "confident", False))
    frontal, adapted, tracked, schedule, reliability = drive(model, td, windows, rms, emo.code, fps, head_motion,
                                                              gate, voice_activity(wav, len(windows), gate), content,
                                                              real_amplitude=sure)
    n_out = len(frontal)
    fit = td.fit
    times["landmarks"] = time.perf_counter() - t0

    head = None
    if td.still and head_motion:  # the whole head moves (hair and outline too), then the face warp adds the rest
        from evpcli.render import still as still_head

        transforms = still_head.head_transforms(tracked[0], adapted)
        weight = still_head.head_weight((td.frames.shape[2], td.frames.shape[1]), tracked[0])
        tracked = still_head.moved_landmarks(tracked[0], transforms)
        head = (still_head.move_head, transforms, weight)
    draw = _make_renderer(ws, renderer, td, device)
    if hasattr(draw, "plan"):  # the warp renderer chooses each mouth opening's source knowing the whole opening
        draw.plan(tracked, adapted)
    t0 = time.perf_counter()
    # Every output is written into a temporary folder beside --out and moved into place only when all of them are
    # complete: a run that fails at any point leaves nothing at --out (nor at the other outputs).
    remove_stale_spills(Path(out).parent)
    tmpdir = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=Path(out).parent))
    owner = _hold(tmpdir)
    try:
        staged: list[tuple[Path, Path]] = []
        if landmarks_out is not None:
            lm_tmp = tmpdir / "landmarks.npz"
            save_npz(lm_tmp, frontal=frontal, adapted=adapted, tracked=tracked, schedule=schedule,
                     reliability=reliability, fps=np.float32(fps))
            staged.append((lm_tmp, Path(landmarks_out)))

        def rendered() -> Iterator[np.ndarray]:
            with progress.task("render", total=n_out, unit="frames") as bar:
                for i, frame in enumerate(_target_frames(td, schedule, fps, tmpdir)):
                    if i >= n_out:
                        break
                    if head is not None:
                        frame = head[0](frame, head[1][i], head[2])
                    yield draw.render(frame, tracked[i], adapted[i], float(reliability[i]))
                    bar.advance(1)

        # the speech keeps its own sample rate and channels in the output (16 kHz mono is for analysis only)
        sar = (1, 1) if td.still else media.probe(td.path).sar  # the target's pixel shape: its display aspect
        video_tmp = media.write_video(tmpdir / ("video" + Path(out).suffix), rendered(), fps=fps, audio=wav,
                                      audio_file=speech, crf=crf, preset=preset, sar=sar)
        times["render"] = time.perf_counter() - t0
        if guidance_out is not None:
            from evpcli.face.guidance import guidance_map

            def guidance() -> Iterator[np.ndarray]:
                for i, frame in enumerate(_target_frames(td, schedule, fps, tmpdir)):
                    if i >= n_out:
                        break
                    yield np.repeat(guidance_map(frame, adapted[i])[..., None], 3, axis=2)

            g_tmp = media.write_video(tmpdir / ("guidance" + Path(guidance_out).suffix), guidance(), fps=fps,
                                      audio=wav)
            staged.append((Path(g_tmp), Path(guidance_out)))
        if td.still:
            size = (int(td.frames.shape[2]), int(td.frames.shape[1])) if td.frames is not None else \
                tuple(int(v) for v in media.probe(td.path).size)
        else:
            size = (int(fit.size[0]), int(fit.size[1]))
        target_info = {"path": str(td.path), "key": fit.key, "frames": td.n_frames, "still": td.still,
                       "face_found_pct": round(100.0 * float(np.mean(fit.detected)), 1),
                       "reliable_pct": round(100.0 * float(np.mean(td.reliability > 0.5)), 1),
                       "own_expression": own_expression(td), "face": getattr(fit, "face", "largest"),
                       "faces_seen": int(getattr(fit, "faces_seen", 1))}
        if target_info["faces_seen"] > 1:
            warnings.append(f"the target shows {target_info['faces_seen']} faces; the {_face_words(target_info['face'])}"
                            " is animated (choose with --face largest|left|right|N|x,y)")
        if target_info["reliable_pct"] < 100:
            lost = int(np.sum(reliability <= 0.5))
            if lost:
                warnings.append(f"the face is unreliable (occluded or lost) in {lost} of {n_out} output frames; "
                                "those frames pass through unchanged")
        staged.append((Path(video_tmp), Path(out)))  # the video last: its presence means the run completed
        for src, dst in staged:
            os.replace(src, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        owner.close()
    return RenderResult(str(out), n_out, n_out / fps, fps, size, renderer, emo.to_dict(), model.source.to_dict(),
                        target_info, {k: round(v, 3) for k, v in times.items()},
                        str(landmarks_out) if landmarks_out else None, str(guidance_out) if guidance_out else None,
                        None, warnings)


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
           progress: Progress | None = None, emotion_face: str | Path | None = None,
           follow_face: bool = False, crf: int = CRF, preset: str = PRESET, face: str = "largest") -> RenderResult:
    """Write ``out`` (mp4): the target person saying ``audio`` with the emotion of ``emotion_audio`` (a clip),
    ``emotion`` (a name) or ``emotion_face`` (a photo or video of a face, :mod:`evpcli.emotion_face`; ``follow_face``:
    its expression over time), scaled by ``intensity``. See the module docstring for the steps."""
    from evpcli.infer import emotion_code

    if sum(x is not None for x in (emotion, emotion_audio, emotion_face)) != 1:
        raise UsageError("give exactly one of --emotion NAME, --emotion-audio FILE or --emotion-face FILE")
    check_inputs(audio, target, out, emotion_audio, {"--landmarks-out": landmarks_out, "--guidance-out": guidance_out},
                 model=model_path, workspace=ws.root, emotion_face=emotion_face)

    def code_for(model, n):
        if emotion_face is not None:
            from evpcli.emotion_face import face_emotion_code

            return face_emotion_code(model, emotion_face, intensity, follow_face, n)
        return emotion_code(model, emotion, emotion_audio, intensity)

    check_encoding(crf, preset)
    return _run(ws, audio, target, out, code_for, renderer=renderer, head_motion=head_motion, fps=fps,
                model_path=model_path, landmarks_out=landmarks_out, guidance_out=guidance_out, device=device,
                progress=progress, crf=crf, preset=preset, face=face)


FACE_PREFIX = "face:"


def _emotion_arg(value: str) -> tuple[str | None, str | None, str | None]:
    """An interpolate endpoint: an emotion name, a path to an emotion clip, or a face (``face:PATH``, or the path
    of a photo) -> (name, clip path, face path)."""
    from evpcli.config import EMOTIONS
    from evpcli.fitpose import is_image

    if value.strip().lower() in EMOTIONS:
        return value.strip().lower(), None, None
    if value.startswith(FACE_PREFIX):
        return None, None, value[len(FACE_PREFIX):]
    if Path(value).exists():
        return (None, None, value) if is_image(value) else (None, value, None)
    raise EvpError(f"{value!r} is neither an emotion ({', '.join(EMOTIONS)}), an existing audio file, nor a face "
                   "(face:PATH)")


def _end_code(model, name: str | None, clip: str | None, face: str | None, intensity: float):
    from evpcli.infer import emotion_code

    if face is not None:
        from evpcli.emotion_face import face_emotion_code

        return face_emotion_code(model, face, intensity)
    return emotion_code(model, name, clip, intensity)


def interpolate(ws: Workspace, audio: str | Path, target: str | Path, out: str | Path, from_emotion: str,
                to_emotion: str, alpha: float | None = None, intensity: float = 1.0, renderer: str = "warp",
                head_motion: bool = False, fps: float = FPS, model_path: str | Path | None = None,
                landmarks_out: str | Path | None = None, guidance_out: str | Path | None = None,
                sheet: str | Path | None = None, sheet_steps: int = 5, device: str = "auto",
                progress: Progress | None = None, crf: int = CRF, preset: str = PRESET,
                face: str = "largest") -> RenderResult:
    """Render with the emotion code moving from ``from_emotion`` to ``to_emotion`` over the clip (the paper's
    editing, ``alpha * E_from + (1 - alpha) * E_to`` with alpha going 1 -> 0), or fixed at ``alpha``. Each end is an
    emotion name, an emotion clip or a face (``face:PATH``, or a photo's path). ``sheet``: also a contact sheet PNG,
    one row per alpha step."""
    from evpcli.infer import mix_emotions

    a_name, a_path, a_face = _emotion_arg(from_emotion)
    b_name, b_path, b_face = _emotion_arg(to_emotion)
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha:g}")
    outputs = {"--landmarks-out": landmarks_out, "--guidance-out": guidance_out, "--sheet": sheet}
    check_inputs(audio, target, out, a_path, outputs, model=model_path, workspace=ws.root)
    for extra in (b_path, a_face, b_face):
        if extra is not None:
            check_inputs(audio, target, out, extra, outputs, model=model_path, workspace=ws.root)

    def code_for(model, n):
        a = _end_code(model, a_name, a_path, a_face, intensity)
        b = _end_code(model, b_name, b_path, b_face, intensity)
        weights = np.full(n, alpha, np.float32) if alpha is not None else np.linspace(1.0, 0.0, n, dtype=np.float32)
        mixed = mix_emotions(a, b, weights)
        mixed.description = (f"{alpha:.2f} x {a.description} + {1 - alpha:.2f} x {b.description}" if alpha is not None
                             else f"{a.description} -> {b.description}")
        return mixed

    check_encoding(crf, preset)
    result = _run(ws, audio, target, out, code_for, renderer=renderer, head_motion=head_motion, fps=fps,
                  model_path=model_path, landmarks_out=landmarks_out, guidance_out=guidance_out, device=device,
                  progress=progress, crf=crf, preset=preset, face=face)
    if sheet is not None:
        try:
            result.sheet = str(_interpolate_sheet(ws, audio, target, sheet, sheet_steps, a_name, a_path, a_face,
                                                  b_name, b_path, b_face, intensity, model_path, device, progress))
        except BaseException:  # the run failed: nothing of it stays at its outputs
            for path in (out, landmarks_out, guidance_out):
                if path is not None:
                    Path(path).unlink(missing_ok=True)
            raise
    return result


def _interpolate_sheet(ws, audio, target, sheet, sheet_steps, a_name, a_path, a_face, b_name, b_path, b_face,
                       intensity, model_path, device, progress=None) -> Path:
    """interpolate's contact sheet: one row per alpha step from one end to the other."""
    from evpcli.infer import mix_emotions
    from evpcli.models import load_audio2lm

    model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
    a = _end_code(model, a_name, a_path, a_face, intensity)
    b = _end_code(model, b_name, b_path, b_face, intensity)
    rows = [(f"alpha {w:.2f}", mix_emotions(a, b, float(w)).code) for w in np.linspace(1.0, 0.0, max(2, sheet_steps))]
    rows[0] = (f"{a.description}", rows[0][1])
    rows[-1] = (f"{b.description}", rows[-1][1])
    return emotion_sheet(ws, audio, target, sheet, rows, model_path=model_path, device=device, progress=progress)


def emotion_sheet(ws, audio: str | Path, target: str | Path, out: str | Path, codes: list[tuple[str, np.ndarray]],
                  columns: int = 6, side: int = 128, model_path=None, device: str = "auto",
                  progress: Progress | None = None) -> Path:
    """One row per (label, emotion code), ``columns`` moments of ``audio`` spread over its loud part. The speech's
    content codes are computed once for all rows (each row used to encode the whole speech again)."""
    from evpcli.infer import content_codes
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
    content = content_codes(model, windows)
    with (progress or Progress()).task("sheet", total=len(codes), unit="rows") as bar:
        for label, code in codes:
            _, adapted, tracked, schedule, reliability = drive(model, td, windows, rms, code, activity=activity,
                                                               content=content)
            driven.append((label, adapted, tracked, schedule, reliability))
            frames_needed = schedule[cols]
            bar.advance(1)
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
