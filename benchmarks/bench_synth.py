"""Synthetic corpus speed: clips per second for one clip in memory, one clip written, and a whole corpus.

    python benchmarks/bench_synth.py [--runs 9] [--jobs 2] [--corpus] [--quality]

Per-clip numbers are medians over ``--runs`` clips (the machines are shared and noisy), split into speech
(espeak-ng + voice quality), the whole in-memory clip (speech + landmarks + warping) and writing it (H.264 +
AAC mp4, wav, npz). ``--corpus`` also times the default corpus (2 actors x 8 emotions x levels 1,3 x
6 sentences = 180 clips) written with ``--jobs`` worker processes into a temporary folder.

``--quality`` measures the issue's acceptance numbers on clips of the default corpus (both actors, every
emotion at levels 1 and 3, ``--quality-sentences`` sentences): dlib's detection rate and mean landmark distance
to the driving landmarks (every 2nd frame), median F0 and duration per emotion and level, and the correlation
of ground-truth mouth opening with the audio energy envelope.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from evpcli.audio import frame_rms
from evpcli.config import EMOTIONS
from evpcli.corpus import synth
from evpcli.face.landmarks import dlib_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--corpus", action="store_true", help="also time the default 180-clip corpus")
    ap.add_argument("--quality", action="store_true", help="also measure dlib agreement, prosody, mouth/energy")
    ap.add_argument("--quality-sentences", type=int, default=3)
    args = ap.parse_args()
    synth.make_clip(0, "neutral", 1, 0, size=args.size)  # warm-up: dlib model, portrait, espeak

    cases = [(i % 2, EMOTIONS[i % len(EMOTIONS)], 3 if EMOTIONS[i % len(EMOTIONS)] != "neutral" else 1, i % 6)
             for i in range(args.runs)]
    t_speech, t_clip, t_write, seconds = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for actor, emotion, level, sentence in cases:
            t0 = time.perf_counter()
            synth.make_speech(actor, emotion, level, sentence)
            t1 = time.perf_counter()
            clip = synth.make_clip(actor, emotion, level, sentence, size=args.size)
            t2 = time.perf_counter()
            synth.write_clip(tmp, clip)
            t3 = time.perf_counter()
            t_speech.append(t1 - t0)
            t_clip.append(t2 - t1)
            t_write.append(t3 - t2)
            seconds.append(len(clip.wav) / synth.SAMPLE_RATE)
    med_len = statistics.median(seconds)
    print(f"clips of median {med_len:.2f} s at {args.size} px, median over {args.runs} clips (one process):")
    for name, ts in (("speech only", t_speech), ("clip in memory", t_clip), ("write mp4+wav+npz", t_write)):
        med = statistics.median(ts)
        print(f"  {name:18s} {med * 1000:7.1f} ms = {1 / med:6.1f} clips/s")
    total = statistics.median([a + b for a, b in zip(t_clip, t_write, strict=True)])
    print(f"  {'make + write':18s} {total * 1000:7.1f} ms = {1 / total:6.1f} clips/s")

    if args.corpus:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = synth.synth_corpus(Path(tmp) / "corpus", size=args.size, jobs=args.jobs)
            dt = time.perf_counter() - t0
        print(f"default corpus: {summary['clips']} clips ({summary['seconds_generated']:.0f} s of video) "
              f"with --jobs {args.jobs} in {dt:.1f} s = {summary['clips'] / dt:.2f} clips/s")

    if args.quality:
        quality(args.quality_sentences, args.size)


def _median_f0(wav: np.ndarray) -> float:
    import librosa

    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=16000, frame_length=1024)
    rms = librosa.feature.rms(y=wav, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[rms > 0.3 * rms.max()]))


def quality(n_sentences: int, size: int) -> None:
    import dlib

    detector, predictor = dlib_models()
    found = total = 0
    errors, rs = [], []
    voice: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for actor in (0, 1):
        for emotion in EMOTIONS:
            for level in ((1,) if emotion == "neutral" else (1, 3)):
                for sentence in range(n_sentences):
                    clip = synth.make_clip(actor, emotion, level, sentence, size=size)
                    rs.append(np.corrcoef(clip.gt["mouth_open"], frame_rms(clip.wav, len(clip.frames)))[0, 1])
                    f0 = _median_f0(clip.wav)
                    voice.setdefault((emotion, level), []).append((f0 / (1 if actor == 0 else 2), len(clip.wav) / 16000))
                    for t in range(0, len(clip.frames), 2):
                        total += 1
                        faces = detector(clip.frames[t], 0)
                        if not faces:
                            continue
                        found += 1
                        r = max(faces, key=lambda f: f.area())
                        shape = predictor(clip.frames[t], dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
                        lm = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
                        errors.append(np.linalg.norm(lm - clip.gt["landmarks"][t], axis=1).mean())
    print(f"dlib on {total} frames of {len(rs)} clips at {size} px: face found in {100 * found / total:.2f} %, "
          f"mean landmark distance to the driving landmarks {np.mean(errors):.2f} px "
          f"(95th percentile of per-frame means {np.percentile(errors, 95):.2f} px)")
    print(f"mouth opening vs audio energy: mean r = {np.mean(rs):.3f} (min {np.min(rs):.3f}) over {len(rs)} clips")
    print("median F0 (male actor; female actor halved) and mean duration per emotion and level:")
    for (emotion, level), vals in sorted(voice.items()):
        v = np.array(vals)
        print(f"  {emotion:10s} level {level}: F0 {np.median(v[:, 0]):6.1f} Hz   duration {v[:, 1].mean():.2f} s")


if __name__ == "__main__":
    main()
