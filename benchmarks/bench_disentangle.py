"""Disentanglement on the synthetic corpus: training steps/s, and the acceptance numbers of the stage.

    python benchmarks/bench_disentangle.py --workspace /tmp/evp-dis [--sentences 10] [--holdout 2]
        [--epochs 12] [--ablate cross] [--threads 2]

Builds (once; later runs reuse it) a workspace from the synthetic corpus's *speech only*: every actor x emotion x
level x sentence of ``evpcli.corpus.synth.make_speech`` (espeak-ng with emotional prosody and voice quality), its
MFCC artifacts and index written with the contract of prepare-dataset (``mfcc``, ``rms``, ``n_frames``); video and
landmarks are not needed here. Then build-pairs, then ``train_disentangle`` with the default network sizes, and
prints the training speed, the wall time, held-out emotion accuracy (sentences never trained on), the two
cross-reconstruction distances and the content-invariance ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from evpcli import audio
from evpcli.config import EMOTIONS, DisentangleTrainConfig
from evpcli.pairs import build_pairs
from evpcli.progress import Progress
from evpcli.workspace import ClipRecord, Workspace, cache_key, save_npz


def _speech_features(args: tuple) -> tuple:
    from evpcli.corpus import synth

    actor, emotion, level, sentence, seed = args
    wav = synth.make_speech(actor, emotion, level, sentence, seed=seed).wav
    n_frames = audio.n_video_frames(len(wav))
    return args, audio.mfcc(wav), audio.frame_rms(wav, n_frames), n_frames


def speech_workspace(ws: Workspace, actors: int, sentences: int, levels: tuple[int, ...], seed: int = 0,
                     jobs: int = 2) -> int:
    """Fill ``ws`` with the synthetic corpus's speech as prepare-dataset would (audio part). Returns clips added."""
    from evpcli.corpus import synth

    if ws.clips():
        return 0
    todo = [(a, e, lv, s, seed) for a in range(actors) for e in EMOTIONS
            for lv in ((1,) if e == "neutral" else levels) for s in range(sentences)]
    records = []
    with ProcessPoolExecutor(jobs) as pool:
        for (a, e, lv, s, sd), m, rms, n_frames in pool.map(_speech_features, todo, chunksize=8):
            actor = synth.actor_name(a)
            clip_id = f"{actor}/{e}/level_{lv}/{s + 1:03d}"
            key = cache_key(clip_id, params={"synth_speech": [a, e, lv, s, sd]})
            path = save_npz(ws.path("mfcc", f"{clip_id.replace('/', '-')}-{key}.npz"), mfcc=m, rms=rms,
                            n_frames=n_frames)
            records.append(ClipRecord(clip_id=clip_id, actor=actor, emotion=e, level=lv, sentence=f"{s + 1:03d}",
                                      video="", text=synth.SENTENCES[s % len(synth.SENTENCES)], n_frames=n_frames,
                                      status="ok"))
            ws.put_artifact("mfcc", key, path, clip_id=clip_id)
    ws.put_clips(records)
    return len(records)


def main() -> None:
    import torch

    from evpcli.train.disentangle import train_disentangle

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="/tmp/evp-bench-disentangle")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=10)
    ap.add_argument("--levels", default="1,3")
    ap.add_argument("--holdout", type=int, default=2, help="sentences held out of training")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--ablate", default="")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ws = Workspace(args.workspace)
    t0 = time.perf_counter()
    added = speech_workspace(ws, args.actors, args.sentences, tuple(int(x) for x in args.levels.split(",")),
                             jobs=args.jobs)
    t_corpus = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = build_pairs(ws)
    t_pairs = time.perf_counter() - t0
    cfg = DisentangleTrainConfig(holdout_sentences=args.holdout, ablate=args.ablate, seed=args.seed)
    over = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "lr": args.lr}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in over.items() if v is not None})
    t0 = time.perf_counter()
    r = train_disentangle(ws, cfg, device="cpu", progress=Progress())
    t_train = time.perf_counter() - t0
    m = r.metrics
    out = {
        "clips": len(ws.clips()), "clips_added": added, "corpus_seconds": round(t_corpus, 1),
        "pairs": pairs.pairs, "pairs_seconds": round(t_pairs, 1), "pairs_per_second": round(pairs.pairs_per_second, 1),
        "mean_warp_ratio": round(pairs.mean_warp_ratio, 3),
        "ablate": args.ablate or None, "epochs": cfg.epochs, "steps": r.steps, "threads": args.threads,
        "training_steps_per_second": round(r.steps_per_second, 3),
        "train_wall_seconds": round(t_train, 1),  # pre-training, training, codes, metrics and plots
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()
           if k not in ("train_sentences", "device")},
        "key": r.key, "embedding_png": str(r.files["embedding_png"]), "loss_png": str(r.files["loss_png"]),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"corpus: {out['clips']} clips ({args.actors} actors x 8 emotions x levels {args.levels} x {args.sentences} "
          f"sentences; built in {t_corpus:.0f} s)")
    print(f"build-pairs: {pairs.pairs} pairs in {t_pairs:.1f} s, mean warp ratio {pairs.mean_warp_ratio:.3f}")
    print(f"train{' (ablate ' + args.ablate + ')' if args.ablate else ''}: {r.steps} steps, "
          f"{r.steps_per_second:.2f} steps/s on {args.threads} threads; whole stage {t_train:.0f} s wall")
    print(f"held-out emotion accuracy {100 * m['heldout_accuracy']:.1f} % over {m['heldout_clips']} clips of sentences "
          f"{', '.join(m['heldout_sentences'])} (windows {100 * m['heldout_window_accuracy']:.1f} %, "
          f"train clips {100 * m['train_accuracy']:.1f} %, chance 12.5 %)")
    print(f"cross-reconstruction on held-out tuples: |D(Ec(x_im),Ee(x_jn)) - x_in| = {m['cross_to_target']:.3f}, "
          f"- x_im = {m['cross_to_source']:.3f} (x_im vs x_in themselves {m['source_to_target']:.3f})")
    print(f"content invariance |Ec(x_im)-Ec(x_in)| / |Ec(x_im)-Ec(x_jm)| = {m['content_ratio']:.3f}")
    print(f"plots: {r.files['loss_png']}  {r.files['embedding_png']}")
    print(f"clip emotion codes: {np.load(r.files['codes'])['clip_codes'].shape}")


if __name__ == "__main__":
    main()
