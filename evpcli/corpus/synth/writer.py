"""Writing the corpus: one clip's files in MEAD's layout (deterministic bytes), and the whole corpus in parallel
worker processes, resumable, with ``corpus.json`` and the sentence map."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from evpcli import __version__
from evpcli.config import EMOTIONS
from evpcli.corpus.mead import SENTENCE_MAP_NAME, write_sentence_map
from evpcli.corpus.synth.actors import astronaut_landmarks, use_portrait_landmarks
from evpcli.corpus.synth.clip import SynthClip, make_clip
from evpcli.corpus.synth.style import DEFAULT_LEVELS, FPS, SAMPLE_RATE, SENTENCES, actor_indices, actor_name, clip_id
from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.atomic import atomic_path


def save_npz_deterministic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write an uncompressed .npz whose bytes depend only on the arrays (fixed zip timestamps)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    return Path(path)


def clip_paths(out: Path, clip_id_: str) -> dict[str, Path]:
    """MEAD-layout paths of a clip: ``video`` (.mp4), ``audio`` (.wav), ``groundtruth`` (.npz)."""
    actor, emotion, level, num = clip_id_.split("/")
    return {
        "video": out / actor / "video" / "front" / emotion / level / f"{num}.mp4",
        "audio": out / actor / "audio" / emotion / level / f"{num}.wav",
        "groundtruth": out / actor / "groundtruth" / emotion / level / f"{num}.npz",
    }


def write_clip(out: str | os.PathLike, clip: SynthClip) -> dict[str, Path]:
    """Write a clip's mp4 (speech muxed as AAC), 16 kHz wav and ground-truth npz under ``out`` (MEAD layout)."""
    from evpcli.media import save_wav, write_video

    paths = clip_paths(Path(out), clip.clip_id)
    save_wav(paths["audio"], clip.wav, SAMPLE_RATE)
    save_npz_deterministic(paths["groundtruth"], clip.gt)
    write_video(paths["video"], clip.frames, fps=clip.fps, audio=clip.wav, sr=SAMPLE_RATE)
    return paths


def _make_and_write(args: tuple) -> tuple[str, int, float]:
    out, actor_index, emotion, level, sentence_index, size, seed = args
    clip = make_clip(actor_index, emotion, level, sentence_index, size, seed)
    write_clip(out, clip)
    return clip.clip_id, len(clip.frames), len(clip.wav) / SAMPLE_RATE


def corpus_clips(actors: int, sentences: int, emotions: Sequence[str], levels: Sequence[int],
                 tts: Sequence[str] = ("espeak",)) -> list[tuple]:
    """(actor_index, emotion, level, sentence_index) of every clip; neutral has level 1 only. ``tts``: the speech
    synthesizers the actors' voices come from (:func:`~evpcli.corpus.synth.style.actor_indices`)."""
    out = []
    for ai in actor_indices(actors, tuple(tts)):
        for emotion in emotions:
            for level in ((1,) if emotion == "neutral" else tuple(levels)):
                for si in range(sentences):
                    out.append((ai, emotion, level, si))
    return out


def _validate(actors: int, sentences: int, emotions: Sequence[str], levels: Sequence[int], size: int, jobs: int):
    if actors < 1:
        raise EvpError(f"--actors must be at least 1, got {actors}")
    if not 1 <= sentences <= len(SENTENCES):
        raise EvpError(f"--sentences must be 1..{len(SENTENCES)}, got {sentences}")
    bad = [e for e in emotions if e not in EMOTIONS]
    if bad or not emotions:
        raise EvpError(f"unknown emotion(s) {', '.join(bad) or '(none)'}; use names from {', '.join(EMOTIONS)}")
    if not levels or any(k not in (1, 2, 3) for k in levels):
        raise EvpError(f"--levels must be among 1,2,3, got {','.join(map(str, levels)) or '(none)'}")
    if size < 64 or size % 2:
        raise EvpError(f"--size must be an even number of pixels >= 64, got {size}")
    if jobs < 1:
        raise EvpError(f"--jobs must be at least 1, got {jobs}")


def _check_tts(tts: tuple[str, ...], actors: int) -> None:
    from evpcli.corpus import festival
    from evpcli.corpus.synth.style import FESTIVAL_BASE, voice_of

    try:
        indices = actor_indices(actors, tts)
    except ValueError as exc:
        raise EvpError(f"--tts: {exc}") from None
    for i in indices:
        if i >= FESTIVAL_BASE:
            festival.require(voice_of(i)[1].split(":", 1)[1])  # says what to install


def synth_corpus(out: str | os.PathLike, actors: int = 2, sentences: int = 6, emotions: Sequence[str] = EMOTIONS,
                 levels: Sequence[int] = DEFAULT_LEVELS, size: int = 256, seed: int = 0, jobs: int = 1,
                 progress: Progress | None = None, tts: Sequence[str] = ("espeak",)) -> dict:
    """Write a MEAD-layout corpus with ground truth under ``out``; returns a summary dict.

    Writes ``<actor>/video/front/<emotion>/level_<k>/<NNN>.mp4``, ``<actor>/audio/...wav``,
    ``<actor>/groundtruth/...npz`` per clip, ``sentences.csv`` (clip,sentence,text) and ``corpus.json``
    (parameters). Clips already complete from an interrupted run with the same parameters are kept; a folder
    holding a corpus made with other parameters is refused. Same arguments, same bytes, whatever ``jobs``.
    """
    out = Path(out)
    emotions, levels = tuple(emotions), tuple(sorted(set(int(k) for k in levels)))
    tts = tuple(tts)
    _validate(actors, sentences, emotions, levels, size, jobs)
    _check_tts(tts, actors)
    params = {"generator": "evp synth-corpus", "version": __version__, "actors": actors, "sentences": sentences,
              "emotions": list(emotions), "levels": list(levels), "size": size, "seed": seed, "fps": FPS,
              "sample_rate": SAMPLE_RATE}
    if tts != ("espeak",):  # espeak-only corpora keep the parameters they were written with
        params["tts"] = list(tts)
    meta_path = out / "corpus.json"
    if out.exists() and not out.is_dir():
        raise EvpError(f"{out} is a file; give a folder to write the corpus into")
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError:
            old = None
        if old != params:
            raise EvpError(f"{out} holds a corpus made with other parameters; choose an empty folder or delete it")
    elif out.exists() and any(out.iterdir()):
        raise EvpError(f"{out} is not empty and holds no synthetic corpus; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")

    clips = corpus_clips(actors, sentences, emotions, levels, tts)
    todo = [c for c in clips if not all(p.exists() for p in clip_paths(out, clip_id(*c)).values())]
    frames = 0
    seconds = 0.0
    with (progress or Progress()).task("synthesising clips", total=len(clips), unit="clips") as task:
        task.advance(len(clips) - len(todo))
        args = [(out, ai, e, k, si, size, seed) for ai, e, k, si in todo]
        if jobs == 1 or len(args) <= 1:
            for a in args:
                _, nf, dur = _make_and_write(a)
                frames, seconds = frames + nf, seconds + dur
                task.advance(1)
        else:
            # Fresh worker processes (spawn: forking this one could copy a lock a progress-bar thread holds);
            # they get the portrait's landmarks from here instead of loading dlib each.
            import multiprocessing as mp

            from evpcli.workers import worker_initializer

            init, initargs = worker_initializer(use_portrait_landmarks, (astronaut_landmarks(),))  # die with us
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                       initializer=init, initargs=initargs)
            try:
                futures = [pool.submit(_make_and_write, a) for a in args]
                for fut in as_completed(futures):
                    _, nf, dur = fut.result()
                    frames, seconds = frames + nf, seconds + dur
                    task.advance(1)
            except BaseException:  # a failed clip or Ctrl-C: drop the queued clips instead of making them all
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()

    write_sentence_map(out / SENTENCE_MAP_NAME, [(clip_id(ai, e, k, si), si + 1, SENTENCES[si]) for ai, e, k, si in clips])
    return {"out": str(out), "clips": len(clips), "generated": len(todo), "kept": len(clips) - len(todo),
            "actors": [actor_name(i) for i in actor_indices(actors, tts)], "tts": list(tts),
            "emotions": list(emotions), "levels": list(levels),
            "sentences": sentences, "frames_generated": frames, "seconds_generated": round(seconds, 2),
            "size": size, "seed": seed}
