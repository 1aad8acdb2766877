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

This module holds the orchestration; the steps live beside it: inputs checked before any work
(:mod:`~evpcli.render.inputs`), the target prepared and cached and its frames read (:mod:`~evpcli.render.targets`,
steps 3-4), the landmark mathematics (:mod:`~evpcli.render.drive`, step 5), and the per-frame engines
(:mod:`evpcli.engines`, step 6).
"""

from __future__ import annotations

import itertools
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
from evpcli.config import FPS, HYBRID_WARP, RenderConfig, SilenceGate
from evpcli.errors import EvpError, UsageError
from evpcli.progress import Progress
from evpcli.render.inputs import check_encoding, check_inputs, crf_for, load_speech
from evpcli.render.drive import drive, shading_amounts, smile_removed
from evpcli.render.targets import (SPILL_PREFIX, TargetData, _hold, _target_frames, own_expression,
                                   prepare_target, remove_stale_spills)
from evpcli.workspace import Workspace, save_npz

RENDERERS = ("warp", "neural")
CONTENT_CHUNK = 250  # speech windows (10 s) per content-code batch: progress in seconds of speech, the same codes
CRF = None  # x264's constant rate factor of the output; None: render.inputs.crf_for the frame size (10-12)
PRESET = "veryfast"  # x264's speed/size trade-off


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


# --------------------------------------------------------------------------- the target


# --------------------------------------------------------------------------- the pipeline


def _face_words(face: str) -> str:
    if face in ("largest", "left", "right"):
        return {"largest": "largest one", "left": "leftmost one", "right": "rightmost one"}[face]
    if face.isdigit():
        return f"face {face} from the left"
    return f"face at {face}"


def _run(ws: Workspace, speech: str | Path, target: str | Path, out: str | Path,
         code_for: Callable[[object, int], object], *, renderer: str = "warp", head_motion: bool = False,
         fps: float = FPS, model_path: str | Path | None = None, landmarks_out: str | Path | None = None,
         guidance_out: str | Path | None = None, device: str = "auto", progress: Progress | None = None,
         gate: SilenceGate | None = SilenceGate(), crf: int | None = CRF, preset: str = PRESET,
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
        from evpcli.engines import still as still_head

        transforms = still_head.head_transforms(tracked[0], adapted)
        weight = still_head.head_weight((td.frames.shape[2], td.frames.shape[1]), tracked[0])
        tracked = still_head.moved_landmarks(tracked[0], transforms)
        head = (still_head.move_head, transforms, weight)
    draw = _make_renderer(ws, renderer, td, device)
    if hasattr(draw, "plan"):  # the warp renderer chooses each mouth opening's source knowing the whole opening
        # and undoes the target's own smile (its grin's teeth, its folds) where the command takes it away, and
        # draws a commanded emotion's shading, a frown's shadows (an emotion clip's only when its emotion is read with
        # confidence, as its amplitude)
        shading = shading_amounts(model, emo.code, n_out, fps) if sure else None
        draw.plan(tracked, adapted, smile_removed(td.reference, frontal, fps), shading)
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
        frames = rendered()
        first = next(frames, None)
        if crf is None and first is not None:
            crf = crf_for(first.shape[1], first.shape[0])
        frames = itertools.chain([] if first is None else [first], frames)
        video_tmp = media.write_video(tmpdir / ("video" + Path(out).suffix), frames, fps=fps, audio=wav,
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


def _make_renderer(ws: Workspace, name: str, td: TargetData, device: str):
    """The per-frame renderer: the warp renderer with the target's mouth bank, or the target's trained neural
    renderer."""
    from evpcli.engines.mouth import MouthBank
    from evpcli.engines.warp import WarpRenderer

    bank = MouthBank.load(td.bank_path) if td.bank_path is not None and td.bank_path.exists() else None
    if name == "neural":
        from evpcli.models import load_renderer
        from evpcli.engines.neural import NeuralRenderer

        bundle = load_renderer(ws, td.path, device=device)
        return NeuralRenderer(bundle, warp=WarpRenderer(bank, HYBRID_WARP) if bundle.config.hybrid else None)
    return WarpRenderer(bank, RenderConfig())


def render(ws: Workspace, audio: str | Path, target: str | Path, out: str | Path, emotion: str | None = None,
           emotion_audio: str | Path | None = None, intensity: float = 1.0, renderer: str = "warp",
           head_motion: bool = False, fps: float = FPS, model_path: str | Path | None = None,
           landmarks_out: str | Path | None = None, guidance_out: str | Path | None = None, device: str = "auto",
           progress: Progress | None = None, emotion_face: str | Path | None = None,
           follow_face: bool = False, crf: int | None = CRF, preset: str = PRESET, face: str = "largest") -> RenderResult:
    """Write ``out`` (mp4): the target person saying ``audio`` with the emotion of ``emotion_audio`` (a clip),
    ``emotion`` (a name) or ``emotion_face`` (a photo or video of a face, :mod:`evpcli.emotion_face`; ``follow_face``:
    its expression over time), scaled by ``intensity``. See the module docstring for the steps."""
    from evpcli.infer import check_emotion_name, emotion_code

    if sum(x is not None for x in (emotion, emotion_audio, emotion_face)) != 1:
        raise UsageError("give exactly one of --emotion NAME, --emotion-audio FILE or --emotion-face FILE")
    check_emotion_name(emotion)
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
                progress: Progress | None = None, crf: int | None = CRF, preset: str = PRESET,
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
    from evpcli.engines.mouth import MouthBank
    from evpcli.render.sheet import face_crop, write_sheet
    from evpcli.engines.warp import WarpRenderer

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
            frontal, adapted, tracked, schedule, reliability = drive(model, td, windows, rms, code,
                                                                     activity=activity, content=content)
            driven.append((label, adapted, tracked, schedule, reliability, smile_removed(td.reference, frontal),
                           shading_amounts(model, code, len(frontal))))
            frames_needed = schedule[cols]
            bar.advance(1)
    wanted = {int(k) for k in frames_needed}
    if td.frames is not None:
        frames = {k: td.frames[k] for k in wanted}
    else:
        frames = {k: f for k, f in enumerate(media.iter_frames(td.path, FPS)) if k in wanted}
    for label, adapted, tracked, schedule, reliability, unsmile, shading in driven:
        cells = []
        for c in cols:
            renderer = WarpRenderer(bank, smile_removed=float(unsmile[c]),
                                    shading={e: float(a[c]) for e, a in shading.items()})
            frame = frames[int(schedule[c])]
            img = renderer.render(frame, tracked[c], adapted[c], float(reliability[c]))
            cells.append(face_crop(img, tracked[c], side))
        rows.append(cells)
        labels.append(label)
    return write_sheet(out, rows, labels, [f"{c / 25.0:.2f} s" for c in cols])
