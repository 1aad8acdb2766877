"""Neural renderer vs hybrid vs warp renderer on held-out frames, training time, render speed and steadiness.

    python benchmarks/bench_neural_renderer.py [--targets carphone,synth] [--threads 1] [--out DIR]
                                               [--epochs N] [--steps-per-epoch N] [--eval-only]

Targets: carphone (real, 176x144, 4 s at 25 fps) and a synthetic 20 s target (seven sentences of one synthetic
actor, 256 px, concatenated). For each, the neural renderer and the hybrid (warp output as an extra input) are
trained with the default CPU configs (:data:`~evpcli.config.RENDERER_CPU`, :class:`RendererTrainConfig`) on the
first 85 % of the frames, and the last 15 % are re-rendered by the three renderers (frame t drawn onto frame
t - 4, driven by t's tracked landmarks; :func:`evpcli.train.renderer.heldout_metrics`): SSIM, PSNR and mean
absolute error of the face box against the real frame, and the mean frame-to-frame change of the face box over
the real video's (1 = as steady). Training time is wall time of data preparation + training (the landmarks,
which fit-pose computes once for render too, are timed apart), on ``--threads`` torch threads; the machine's load
average is printed beside it. Render speed: frames/s of ``render`` on the target's frames and on carphone
scaled to 640x360 (median of 3 runs). ``--out`` keeps the checkpoints and PNG grids (guidance | real | neural |
hybrid | warp); ``--eval-only`` measures the checkpoints an earlier run left in ``--out`` instead of training.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evpcli.config import RENDERER_CPU, RendererTrainConfig  # noqa: E402
from evpcli.engines.neural import NeuralRenderer  # noqa: E402
from evpcli.models import generator_from_state  # noqa: E402
from evpcli.engines.warp import WarpRenderer, analyse_target  # noqa: E402
from evpcli.train.renderer import fit_renderer, grid_png, heldout_metrics  # noqa: E402
from evpcli.train.renderer_data import prepare_training_target  # noqa: E402
from evpcli.workspace import load_checkpoint  # noqa: E402
from tests.renderdata import Target, carphone_target, open_mouth  # noqa: E402

OFFSET = 4


def synth_long(seconds: float = 20.0) -> Target:
    """Sentences of synthetic actor 0 (neutral and happy, alternating) concatenated to ``seconds``."""
    from evpcli.corpus.synth import make_clip
    from evpcli.face.landmarks import track_video

    clips, n, k = [], 0, 0
    while n < seconds * 25:
        c = make_clip(0, ("neutral", "happy")[k % 2], 2, k % 10, size=256)
        clips.append(c.frames)
        n += len(c.frames)
        k += 1
    frames = np.concatenate(clips)[:int(seconds * 25)]
    tr = track_video(frames)
    return Target(frames, tr.landmarks.astype(np.float64), tr.valid)


def load(name: str) -> tuple[Target, float]:
    t0 = time.perf_counter()
    target = carphone_target() if name == "carphone" else synth_long()
    return target, time.perf_counter() - t0


def render_fps(renderer, frames: np.ndarray, landmarks: np.ndarray, runs: int = 3) -> float:
    cmds = [open_mouth(lm, 6.0 * (i % 5) / 4) for i, lm in enumerate(landmarks)]
    rates = []
    for _ in range(runs):
        renderer.reset()
        t0 = time.perf_counter()
        for f, lm, c in zip(frames, landmarks, cmds, strict=True):
            renderer.render(f, lm, c, 1.0)
        rates.append(len(frames) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    import torch

    from bench_render import widescreen  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="carphone,synth")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--eval-only", action="store_true", help="reuse the checkpoints in --out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    over = {k: v for k, v in (("epochs", args.epochs), ("steps_per_epoch", args.steps_per_epoch)) if v is not None}
    train_cfg = dataclasses.replace(RendererTrainConfig(), **over)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-neural-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    wide = widescreen(carphone_target())
    wide_bank, _ = analyse_target(iter(wide.frames), wide.landmarks, wide.valid)
    print(f"config: {RENDERER_CPU.size} px crop, channels {RENDERER_CPU.channels}, {train_cfg.epochs} epochs x "
          f"{train_cfg.steps_per_epoch} steps of {train_cfg.batch_size} x {train_cfg.seq_len} frames; "
          f"{args.threads} torch thread(s); grids in {out_dir}")
    for name in args.targets.split(","):
        target, t_landmarks = load(name)
        n = len(target.frames)
        renderers, train_info = {}, {}
        for kind in ("neural", "hybrid"):
            net_cfg = dataclasses.replace(RENDERER_CPU, hybrid=kind == "hybrid")
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            data = prepare_training_target(iter(target.frames), target.landmarks, target.valid, net_cfg, train_cfg)
            ckpt = out_dir / f"{name}-{kind}.pt"
            if args.eval_only:
                gen, net_cfg = generator_from_state(load_checkpoint(ckpt))
            else:
                gen = fit_renderer(data, net_cfg, train_cfg, ckpt, out_dir / f"{name}-{kind}.csv",
                                   heldout_every=0).generator
                train_info[kind] = (time.perf_counter() - t0, load0, os.getloadavg()[0])
            renderers[kind] = NeuralRenderer(gen, net_cfg, warp=WarpRenderer(data.bank))
        renderers["warp"] = WarpRenderer(data.bank)
        held = data.heldout()
        scores, kept = heldout_metrics(renderers, data.frames, data.landmarks, held, offset=OFFSET, keep=len(held))
        pairs = [(held[i - OFFSET], held[i]) for i in range(OFFSET, len(held))]
        grid = grid_png(out_dir / f"{name}-heldout.png", data, kept, pairs, RENDERER_CPU, rows=6)
        print(f"\n{name}: {n} frames ({n / 25:.1f} s) {target.frames.shape[2]}x{target.frames.shape[1]}, "
              f"{len(held)} held out ({scores['neural']['frames']} re-rendered), landmarks {t_landmarks:.1f} s; "
              f"grid {grid}")
        for kind, (secs, l0, l1) in train_info.items():
            print(f"  train {kind}: {secs:.0f} s ({secs / 60:.1f} min), load average {l0:.1f} -> {l1:.1f}")
        print(f"  {'renderer':8} {'SSIM':>6} {'PSNR dB':>8} {'MAE':>6} {'sharpness':>9} {'change/real':>11} "
              f"{'frames/s':>9} {'640x360 f/s':>11}")
        for kind in ("neural", "hybrid", "warp"):
            r = renderers[kind]
            fps = render_fps(r, data.frames[held], data.landmarks[held])
            fps_wide = float("nan")
            if name == "carphone" and kind != "warp":  # the warp renderer's speed: benchmarks/bench_render.py
                r_wide = NeuralRenderer(r.net, r.cfg, warp=WarpRenderer(wide_bank))
                fps_wide = render_fps(r_wide, wide.frames[:40], wide.landmarks[:40])
            s = scores[kind]
            print(f"  {kind:8} {s['ssim']:6.3f} {s['psnr']:8.2f} {s['mae']:6.2f} {s['sharpness']:9.2f} "
                  f"{s['change_ratio']:11.2f} {fps:9.1f} {fps_wide:11.1f}")
        print(f"  real video: mean frame-to-frame change of the face box {scores['real']['change']:.2f}")


if __name__ == "__main__":
    main()
