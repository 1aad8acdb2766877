"""Speech + emotion -> landmarks, with no training code.

Everything a command needs to drive a face from speech once a model is loaded (:mod:`evpcli.models`):

- identity features of a reference face (what the identity MLP reads);
- emotion codes: of a speech clip (mean of Ee over its windows), of an emotion name (the mean code of that
  emotion's training clips), scaled by an intensity, and mixed (the paper's editing ``alpha E_a + (1-alpha) E_b``);
- the silence gate (mouth and chin close where the speech is silent);
- :func:`predict_landmarks` (MFCC windows -> normalised landmarks, any length);
- :func:`landmark_emotion`: the emotion the landmark emotion classifier reads from a landmark sequence.

Functions take a model bundle of :mod:`evpcli.models` or an inference engine: the network behind either, numpy
(:class:`evpcli.npinfer.NumpyAudio2Landmark`) or torch (:class:`evpcli.torchinfer.TorchAudio2Landmark`, in which
training code wraps its own network), with one interface (described in :mod:`evpcli.torchinfer`). Nothing here
knows which backend runs, and nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evpcli import audio
from evpcli.config import EMOTIONS, SilenceGate
from evpcli.errors import EvpError, UsageError
from evpcli.face.normalize import TEMPLATE
from evpcli.face.parts import LOWER_JAW, MOUTH

# Points a silent mouth closes: the lips and the lower jaw.
GATED = np.unique(np.concatenate([MOUTH, LOWER_JAW]))
MAX_INTENSITY = 2.0
LANDMARK_EMOTION_SCALE = 256.0  # the landmark emotion classifier reads displacements / 256 (about +-0.05)


def _engine(model: Any):
    """The inference engine of a bundle (its ``engine``), or the engine itself."""
    return getattr(model, "engine", model)


def identity_features(reference: np.ndarray, disp_scale: float = 8.0) -> np.ndarray:
    """The identity MLP's input: (reference - canonical template) / disp_scale, flattened -> (136,) float32."""
    return ((np.asarray(reference, np.float32) - TEMPLATE.astype(np.float32)) / disp_scale).reshape(136)


# --------------------------------------------------------------------------- emotion codes
def clip_emotion_code(model: Any, windows: np.ndarray) -> np.ndarray:
    """Clip-level emotion code (emotion_dim,) float32 of raw MFCC windows (N, 28, 12): the mean of Ee over them.

    ``model``: an audio-to-landmark bundle/model (its own, possibly fine-tuned, emotion encoder) or a
    disentanglement bundle/model."""
    return _engine(model).emotion_code(windows).astype(np.float32)


def code_logits(model: Any, code: np.ndarray) -> np.ndarray:
    """The emotion classifier Ce's logits (8,) float64 for a clip-level code (before any calibration)."""
    return np.asarray(_engine(model).logits(code)).astype(np.float64)


def classify_code(model: Any, code: np.ndarray) -> tuple[str, float]:
    """The emotion the classifier Ce reads from a clip-level code, and its (uncalibrated) probability."""
    from evpcli.calibration import softmax

    p = softmax(code_logits(model, code))
    k = int(p.argmax())
    return EMOTIONS[k], float(p[k])


@dataclass
class EmotionCode:
    """An emotion to drive with: ``code`` (emotion_dim,) or per frame (T, emotion_dim) float32.

    ``source`` is "name", "audio", "face" or "mix" (``face``: what was read from a reference face,
    :mod:`evpcli.emotion_face`). For an emotion clip: ``predicted``/``probability`` are what the emotion
    classifier reads from it (the probability calibrated when the model carries a calibration,
    :mod:`evpcli.calibration`), ``out_of_distribution`` whether its code is far from every training emotion
    (``distance`` to the nearest emotion mean, in units of the training codes' spread; None when the model carries
    no statistics to tell), ``reading`` what evp states: the emotion when the reading is ``confident``, else
    "uncertain" (``blend``: the two most probable emotions and their probabilities); ``fallback`` is "neutral" when
    the clip's code was replaced by the neutral mean because it lies far from every training emotion."""

    code: np.ndarray
    description: str
    source: str
    intensity: float = 1.0
    predicted: str | None = None
    probability: float | None = None
    out_of_distribution: bool | None = None
    reading: str | None = None
    confident: bool | None = None
    calibrated: bool | None = None
    distance: float | None = None
    blend: dict | None = None
    fallback: str | None = None
    confident_at: float | None = None
    face: dict | None = None  # source "face": what was read from the reference (evpcli.emotion_face)

    def to_dict(self) -> dict:
        out = {"description": self.description, "source": self.source, "intensity": self.intensity,
               "predicted": self.predicted, "probability": self.probability,
               "out_of_distribution": self.out_of_distribution, "reading": self.reading,
               "confident": self.confident, "calibrated": self.calibrated, "distance": self.distance,
               "blend": self.blend, "fallback": self.fallback, "confident_at": self.confident_at}
        if self.face is not None:
            out["face"] = self.face
        return out


def code_distance(model: Any, code: np.ndarray) -> float | None:
    """Distance of a clip-level code to the nearest emotion mean, each dimension divided by the training codes'
    spread (``code_scale`` stored with an audio-to-landmark model), per sqrt(dimension); None when the model has
    no statistics."""
    from evpcli.calibration import code_distance as dist

    stats = getattr(model, "code_stats", None) or {}
    means = getattr(model, "emotion_means", None) or {}
    if "scale" not in stats or not means:
        return None
    return dist(np.stack(list(means.values())), stats["scale"], code)


def out_of_distribution(model: Any, code: np.ndarray) -> bool | None:
    """Whether a clip-level code is far from every training emotion: :func:`code_distance` above ``code_limit``
    (stored with the model: at training, 1.25 x the 99th percentile of the training clips' distances; once
    calibrated, set from the corpus's held-out clips and real speech, :mod:`evpcli.calibration`). None when the
    model has none."""
    stats = getattr(model, "code_stats", None) or {}
    d = code_distance(model, code)
    if d is None or "limit" not in stats:
        return None
    return bool(d > float(stats["limit"]))


def reading_phrase(emo: dict) -> str:
    """How a summary states what an emotion clip reads as (``emo``: :meth:`EmotionCode.to_dict`); "" for a name."""
    if emo.get("source") != "audio" or not emo.get("predicted"):
        return ""
    blend = ", ".join(f"{k} {v:.2f}" for k, v in (emo.get("blend") or {}).items())
    if emo.get("fallback"):
        return (f" (the clip's emotion code is far from every training emotion, so it drives neutral; the "
                f"classifier's reading would be uncertain: {blend})")
    if emo.get("confident"):
        cal = "" if emo.get("calibrated") else ", uncalibrated"
        return f" (reads {emo['predicted']}, p = {emo['probability']:.2f}{cal})"
    if emo.get("calibrated"):
        return (f" (reading uncertain: {emo['predicted']}, p = {emo['probability']:.4f}, under the "
                f"{emo['confident_at']:.4f} a confident reading needs; the face shows the clip's own code: {blend})")
    return f" (the classifier reads {emo['predicted']}, p = {emo['probability']:.2f}, uncalibrated)"


def ood_warning(code: EmotionCode) -> str | None:
    """The warning to show when an emotion clip's code is far from every training emotion or its calibrated
    reading is uncertain, else None."""
    if not code.out_of_distribution:
        if code.calibrated and code.confident is False:
            return (f"the emotion clip's reading is uncertain ({code.predicted}, p = {code.probability:.4f}, under the "
                    f"{code.confident_at:.4f} a confident reading needs: the classifier reads neutral real speech "
                    "as an emotion this surely), so the face may not show the emotion you expect; use --emotion NAME "
                    "instead, or a model trained on real speech (MEAD)")
        return None
    read = f" (the classifier reads {code.predicted}, p = {code.probability:.2f})" if code.predicted else ""
    used = ("; it drives the neutral expression instead" if code.fallback == "neutral" else "")
    return (f"the emotion clip's code is far from every training emotion{read}{used}: speech unlike the training "
            "voices (real recordings, for a model trained on synthetic speech) gives an emotion the model never "
            "learnt, so its reading means nothing; use --emotion NAME instead, or a model trained on real speech "
            "(MEAD)")


def scale_intensity(model: Any, code: np.ndarray, intensity: float) -> np.ndarray:
    """Move a code ``intensity`` times its distance from the neutral mean (0 = neutral, 1 = unchanged, <= 2).
    Codes are non-negative (Ee ends in a ReLU), so the result is clipped at 0."""
    if not 0.0 <= intensity <= MAX_INTENSITY:
        raise UsageError(f"--intensity must be between 0 and {MAX_INTENSITY:g}, got {intensity:g}")
    if intensity == 1.0:
        return np.asarray(code, np.float32)
    means = getattr(model, "emotion_means", None) or {}
    if "neutral" not in means:
        raise EvpError("the model was trained without neutral clips, so --intensity cannot be applied; use 1")
    neutral = means["neutral"]
    return np.maximum(neutral + intensity * (np.asarray(code, np.float32) - neutral), 0.0).astype(np.float32)


from evpcli.audio import SILENT_RMS  # noqa: E402  (an emotion clip quieter than that carries no voice)


def check_emotion_name(emotion: str | None) -> str | None:
    """``emotion`` (``--emotion NAME``) as the name evp knows (lower case), or None for None; a name it does not
    know is a usage error (exit 2), raised before any work."""
    if emotion is None:
        return None
    name = emotion.strip().lower()
    if name not in EMOTIONS:
        raise UsageError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    return name


def emotion_code(model: Any, emotion: str | None = None, emotion_audio: str | Path | np.ndarray | None = None,
                 intensity: float = 1.0) -> EmotionCode:
    """The emotion code of an emotion name (its training clips' mean code) or of an emotion clip (a path, or 16 kHz
    mono float32 speech), moved by ``intensity``. Exactly one of ``emotion``/``emotion_audio``."""
    if (emotion is None) == (emotion_audio is None):
        raise UsageError("give exactly one of --emotion NAME or --emotion-audio FILE")
    means = getattr(model, "emotion_means", None) or {}
    if emotion is not None:
        name = check_emotion_name(emotion)
        if name not in means:
            raise EvpError(f"the model was trained without {name} clips; use one of {', '.join(sorted(means))}")
        code = scale_intensity(model, means[name], intensity)
        return EmotionCode(code, name if intensity == 1.0 else f"{name} x{intensity:g}", "name", intensity)
    if isinstance(emotion_audio, np.ndarray):
        wav, label = emotion_audio, "the emotion clip"
    else:
        from evpcli import media

        wav, label = media.load_audio(emotion_audio), Path(emotion_audio).name
    windows = audio.speech_windows(wav)
    if len(windows) < 1:
        raise EvpError(f"{label}: the emotion clip is too short (under one video frame of speech)")
    level = float(np.sqrt(np.mean(np.square(np.asarray(wav, np.float64))))) if len(wav) else 0.0
    if level < SILENT_RMS:
        raise EvpError(f"{label}: the emotion clip is silent ({20 * np.log10(max(level, 1e-12)):.0f} dBFS); give a clip "
                       "of someone speaking with the emotion, or --emotion NAME")
    raw = clip_emotion_code(model, windows)
    return read_emotion_clip(model, raw, label, intensity)


def read_emotion_clip(model: Any, raw: np.ndarray, label: str, intensity: float = 1.0) -> EmotionCode:
    """The :class:`EmotionCode` of an emotion clip's raw code: the calibrated reading (:mod:`evpcli.calibration`:
    temperature ``code_temperature``, confidence threshold ``code_confident``, distance limit ``code_limit`` stored
    with the model) and, for a code far from every training emotion, the neutral mean code in its place."""
    from evpcli.calibration import read, softmax

    stats = getattr(model, "code_stats", None) or {}
    calibrated = "temperature" in stats and "confident" in stats
    probs = softmax(code_logits(model, raw), float(stats["temperature"]) if calibrated else 1.0)
    dist = code_distance(model, raw)
    limit = float(stats["limit"]) if "limit" in stats and dist is not None else None
    r = read(probs, dist if dist is not None else 0.0, limit, float(stats["confident"]) if calibrated else None,
             EMOTIONS)
    k = int(probs.argmax())
    means = getattr(model, "emotion_means", None) or {}
    fallback = "neutral" if r["out_of_distribution"] and "neutral" in means else None
    code = scale_intensity(model, means["neutral"] if fallback else raw, intensity)
    desc = (f"neutral (of {label}: its code is far from every training emotion)" if fallback else f"of {label}") \
        + (f" x{intensity:g}" if intensity != 1.0 else "")
    return EmotionCode(code, desc, "audio", intensity, EMOTIONS[k], float(probs[k]), r["out_of_distribution"],
                       r["reading"], r["confident"] if calibrated else None, calibrated,
                       None if dist is None else float(dist), r["blend"], fallback,
                       float(stats["confident"]) if calibrated else None)


def mix_emotions(a: EmotionCode, b: EmotionCode, alpha: float | np.ndarray) -> EmotionCode:
    """The paper's emotion editing: ``alpha * a + (1 - alpha) * b``; ``alpha`` a number or per frame (T,) -> a code
    (D,) or (T, D)."""
    alpha_arr = np.asarray(alpha, np.float32)
    if np.any(alpha_arr < 0) or np.any(alpha_arr > 1):
        raise EvpError("alpha must be between 0 and 1")
    ca, cb = np.asarray(a.code, np.float32), np.asarray(b.code, np.float32)
    if alpha_arr.ndim == 0:
        code = float(alpha_arr) * ca + (1 - float(alpha_arr)) * cb
        desc = f"{float(alpha_arr):.2f} x {a.description} + {1 - float(alpha_arr):.2f} x {b.description}"
    else:
        code = alpha_arr[:, None] * ca[None] + (1 - alpha_arr[:, None]) * cb[None]
        desc = f"{a.description} -> {b.description}" if alpha_arr[0] >= alpha_arr[-1] else \
            f"{b.description} -> {a.description}"
    return EmotionCode(code.astype(np.float32), desc, "mix")


# --------------------------------------------------------------------------- silence gate
def silence_weights(rms: np.ndarray, gate: SilenceGate = SilenceGate(), activity: np.ndarray | None = None) -> np.ndarray:
    """Per-frame mouth weight in [0, 1]: 0 where the audio is silent, 1 in speech, smoothed (T,).

    Energy: the frame RMS between the clip's noise floor (``gate.floor_percentile``) and its loud frames (95th
    percentile), mapped through ``low``..``high`` with a smoothstep. ``activity`` (T,) in [0, 1] (voice activity,
    :func:`evpcli.vad.voice_activity`) caps it where given."""
    rms = np.asarray(rms, np.float64)
    loud = np.percentile(rms, 95) if len(rms) else 0.0
    floor = np.percentile(rms, gate.floor_percentile) if len(rms) and gate.floor_percentile > 0 else 0.0
    if floor >= loud:  # no quieter frames at all (a constant level): the level itself is not a pause
        floor = 0.0
    if loud <= 0:
        return np.zeros(len(rms))
    x = np.clip(((rms - floor) / (loud - floor) - gate.low) / (gate.high - gate.low), 0.0, 1.0)
    w = x * x * (3 - 2 * x)  # smoothstep
    if activity is not None:
        w = np.minimum(w, np.clip(np.asarray(activity, np.float64)[:len(w)], 0.0, 1.0))
    if gate.smooth > 1 and len(w) > 1:
        k = np.ones(gate.smooth) / gate.smooth
        w = np.convolve(np.pad(w, gate.smooth // 2, mode="edge"), k, mode="valid")[:len(rms)]
    return w


def closed_mouth(reference: np.ndarray) -> np.ndarray:
    """The reference face (68, 2) with its lips together: the lower lip and the chin move up by the inner-lip gap
    (the chin by a share that falls off along the jaw), nothing else changes. A reference that is the mean of
    speaking frames has its mouth half open; a pause shows it closed."""
    out = np.array(reference, np.float32, copy=True)
    gap = np.maximum(out[[67, 66, 65], 1] - out[[61, 62, 63], 1], 0.0)  # per inner-lip pair
    if gap.max() <= 0:
        return out
    out[[67, 66, 65], 1] -= gap
    out[[59, 58, 57, 56, 55], 1] -= gap.mean()  # outer lower lip
    jaw = {5: 0.3, 6: 0.5, 7: 0.8, 8: 1.0, 9: 0.8, 10: 0.5, 11: 0.3}
    for k, wgt in jaw.items():
        out[k, 1] -= wgt * gap.mean()
    return out


def apply_silence_gate(landmarks: np.ndarray, reference: np.ndarray, rms: np.ndarray,
                       gate: SilenceGate = SilenceGate(), activity: np.ndarray | None = None) -> np.ndarray:
    """Close the mouth where the audio is silent: lip and chin points move towards the closed mouth
    (:func:`closed_mouth` of the reference; the reference itself without ``gate.close``) by ``1 - weight``
    (T, 68, 2)."""
    w = silence_weights(rms, gate, activity)[:, None, None]
    out = np.array(landmarks, np.float32, copy=True)
    rest = closed_mouth(reference) if gate.close else np.asarray(reference, np.float32)
    ref = rest[None, GATED]
    out[:, GATED] = ref + w * (out[:, GATED] - ref)
    return out


def voice_activity(wav: np.ndarray, n_frames: int, gate: SilenceGate | None = SilenceGate()) -> np.ndarray | None:
    """Per-frame voice activity (n_frames,) for the gate, or None when the gate does not use it or webrtcvad is
    not installed (the energy gate alone then)."""
    from evpcli import vad

    if gate is None or not gate.vad or not vad.available():
        return None
    return vad.voice_activity(wav, n_frames)


# --------------------------------------------------------------------------- landmarks
def predict_landmarks(model: Any, windows: np.ndarray, emotion: np.ndarray | None, reference: np.ndarray,
                      rms: np.ndarray | None = None, gate: SilenceGate | None = SilenceGate(),
                      activity: np.ndarray | None = None, content: np.ndarray | None = None) -> np.ndarray:
    """Normalised landmarks (T, 68, 2) float32 (canonical 256 frame) for MFCC windows (T, 28, 12) of any length.

    ``emotion``: a code (emotion_dim,), a per-frame code (T, emotion_dim) (interpolation), or None for the clip's
    own code (mean of Ee over ``windows``). ``reference`` (68, 2): the face whose identity and rest shape the
    landmarks take. With ``rms`` and ``gate`` the mouth closes in silence (``activity``: per-frame voice activity,
    :func:`voice_activity`, which keeps it closed in noisy pauses too). ``content``: the windows' content codes when
    computed beforehand (:func:`content_codes`; engines that compute them in their forward pass ignore it).
    """
    engine = _engine(model)
    ident = identity_features(reference, float(engine.disp_scale))
    lm = np.asarray(reference, np.float32)[None] + engine.displacements(windows, emotion, ident, content)
    if rms is not None and gate is not None:
        lm = apply_silence_gate(lm, reference, rms, gate, activity)
    return lm.astype(np.float32)


def expressive_landmarks(model: Any, windows: np.ndarray, emotion: np.ndarray, reference: np.ndarray,
                         rms: np.ndarray | None = None, gate: SilenceGate | None = SilenceGate(),
                         activity: np.ndarray | None = None, content: np.ndarray | None = None,
                         neutral: np.ndarray | None = None) -> np.ndarray:
    """:func:`predict_landmarks` with the emotion's lasting expression at real amplitudes (:mod:`evpcli.face.
    amplitude`): the render's landmarks. Costs one more pass of the network over the speech (the neutral code),
    unless the caller has it: ``neutral``, the ungated prediction with the neutral mean code. Models without a
    neutral mean code, and ``emotion`` None (the clip's own code), get :func:`predict_landmarks` unchanged."""
    from evpcli.face import amplitude

    means = getattr(model, "emotion_means", None) or {}
    if emotion is None or "neutral" not in means or len(means) < 2:
        return predict_landmarks(model, windows, emotion, reference, rms, gate, activity, content)
    # both ungated: the silence gate closes the mouth after the expression is scaled
    lm = predict_landmarks(model, windows, emotion, reference, None, None, None, content)
    if neutral is None:
        neutral = predict_landmarks(model, windows, means["neutral"], reference, None, None, None, content)
    lm = amplitude.amplify(lm, neutral, amplitude.targets(amplitude.code_weights(emotion, means)))
    if rms is not None and gate is not None:
        lm = apply_silence_gate(lm, reference, rms, gate, activity)
    return lm.astype(np.float32)


def content_codes(model: Any, windows: np.ndarray) -> np.ndarray | None:
    """The content codes (T, content_dim) of a clip's windows, for :func:`predict_landmarks` to take later (so a
    caller can compute them in a thread while it does other work); None where the engine computes them inside its
    forward pass (torch)."""
    return _engine(model).content_codes(windows)


def speech_landmarks(model: Any, wav: np.ndarray, code: np.ndarray | None, reference: np.ndarray,
                     gate: SilenceGate | None = SilenceGate()) -> np.ndarray:
    """Normalised landmarks (T, 68, 2) of 16 kHz mono speech with emotion ``code``, one per 25 fps frame."""
    windows = audio.speech_windows(wav)
    return predict_landmarks(model, windows, code, reference, audio.frame_rms(wav, len(windows)), gate,
                             voice_activity(wav, len(windows), gate))


# --------------------------------------------------------------------------- emotion of landmarks
def landmark_displacement(normalised: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The landmark emotion classifier's input: (T, 68, 2) normalised landmarks minus the person's reference face,
    divided by 256 -> (T, 68, 2) float32."""
    return ((np.asarray(normalised, np.float32) - np.asarray(reference, np.float32)[None])
            / LANDMARK_EMOTION_SCALE).astype(np.float32)


def landmark_emotion(model: Any, landmarks: np.ndarray, reference: np.ndarray) -> tuple[str, float]:
    """The emotion a landmark emotion classifier (bundle of :func:`evpcli.models.load_landmark_emotion`, or the
    network) reads from normalised landmarks (T, 68, 2) of a face whose neutral reference is ``reference``, and
    its probability. ``model``: a bundle, or an engine (:class:`evpcli.torchinfer.TorchLandmarkEmotion`)."""
    p = _engine(model).probabilities(landmark_displacement(landmarks, reference))
    k = int(p.argmax())
    return EMOTIONS[k], float(p[k])
