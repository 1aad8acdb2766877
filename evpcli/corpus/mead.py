"""MEAD's folder layout (also what ``evp synth-corpus`` writes).

::

    <root>/<actor>/video/<view>/<emotion>/level_<k>/<NNN>.mp4
    <root>/<actor>/audio/<emotion>/level_<k>/<NNN>.m4a   (or .wav; absent: the video's own audio track)
    <root>/sentences.csv                                 (optional sentence map)

The sentence map is a CSV with columns ``clip,sentence,text`` where ``clip`` is ``actor/emotion/level_k/NNN``;
clips of one actor with the same ``sentence`` say the same words (MEAD's clip numbers do not always mean the
same sentence across emotions, so pairing needs it). Without a map the clip number NNN is the sentence id, and a
warning says so.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from evpcli.config import EMOTIONS
from evpcli.corpus.manifest import check_emotion, clip_id, parse_level
from evpcli.errors import EvpError
from evpcli.atomic import atomic_path
from evpcli.workspace import ClipRecord

SENTENCE_MAP_NAME = "sentences.csv"
AUDIO_SUFFIXES = (".m4a", ".wav")


def read_sentence_map(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """``clip id -> (sentence id, text)`` from a ``clip,sentence,text`` CSV."""
    path = Path(path)
    if not path.is_file():
        raise EvpError(f"{path}: sentence map not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "clip" not in cols or "sentence" not in cols:
            raise EvpError(f"{path}: sentence map needs the columns clip,sentence[,text]")
        out = {}
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if row.get("clip"):
                out[row["clip"]] = (row.get("sentence", ""), row.get("text", ""))
    return out


def write_sentence_map(path: str | os.PathLike, rows: Iterable[tuple[str, int | str, str]]) -> Path:
    """Atomically write ``(clip id, sentence id, text)`` rows as the CSV :func:`read_sentence_map` reads."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["clip", "sentence", "text"])
        writer.writerows(rows)
    return Path(path)


def _split(names: str | list[str] | None) -> set[str] | None:
    if names is None:
        return None
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [n.strip() for n in items if n.strip()]
    return set(items) or None


def scan_mead(root: str | os.PathLike, view: str = "front", actors: str | list[str] | None = None,
              emotions: str | list[str] | None = None,
              sentence_map: str | os.PathLike | None = None) -> tuple[list[ClipRecord], list[str]]:
    """Clips of a MEAD-layout folder, sorted by clip id, and warnings (one line each).

    ``actors``/``emotions``: names to keep (comma-separated string or list; None: all). Clips under a folder whose
    emotion is not one of MEAD's eight, or whose level folder is not ``level_1..3``, come back with
    ``status="failed"`` and the reason. Raises :class:`EvpError` when the folder holds no MEAD clips.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvpError(f"{root}: not a folder (--layout mead takes the corpus root)")
    keep_actors, keep_emotions = _split(actors), _split(emotions)
    if keep_emotions:
        bad = sorted(e for e in keep_emotions if e not in EMOTIONS)
        if bad:
            raise EvpError(f"--emotions: unknown emotion(s) {', '.join(bad)} (expected some of {', '.join(EMOTIONS)})")
    warnings: list[str] = []
    smap_path = Path(sentence_map) if sentence_map is not None else root / SENTENCE_MAP_NAME
    smap: dict[str, tuple[str, str]] | None = None
    if sentence_map is not None or smap_path.is_file():
        smap = read_sentence_map(smap_path)
    else:
        warnings.append(f"no sentence map ({root / SENTENCE_MAP_NAME} or --sentence-map): the clip number is "
                        "used as the sentence id, which is only right if equal numbers mean equal sentences")
    actor_dirs = sorted(d for d in root.iterdir() if d.is_dir() and (d / "video" / view).is_dir())
    if keep_actors:
        found = {d.name for d in actor_dirs}
        for a in sorted(keep_actors - found):
            warnings.append(f"actor {a} not found under {root} (view {view})")
        actor_dirs = [d for d in actor_dirs if d.name in keep_actors]
    records: list[ClipRecord] = []
    unmapped = 0
    for actor_dir in actor_dirs:
        actor = actor_dir.name
        for emo_dir in sorted(d for d in (actor_dir / "video" / view).iterdir() if d.is_dir()):
            emotion = emo_dir.name
            if keep_emotions and emotion not in keep_emotions:
                continue
            for level_dir in sorted(d for d in emo_dir.iterdir() if d.is_dir()):
                level = parse_level(level_dir.name) if level_dir.name.startswith("level_") else None
                for video in sorted(level_dir.glob("*.mp4")):
                    number = video.stem
                    cid = clip_id(actor, emotion, level if level is not None else level_dir.name.removeprefix("level_"),
                                  number)
                    audio = ""
                    for suffix in AUDIO_SUFFIXES:
                        a = actor_dir / "audio" / emotion / level_dir.name / f"{number}{suffix}"
                        if a.is_file():
                            audio = str(a.resolve())
                            break
                    sentence, text = number, ""
                    if smap is not None:
                        if cid in smap and smap[cid][0]:
                            sentence, text = smap[cid]
                        else:
                            unmapped += 1
                    rec = ClipRecord(clip_id=cid, actor=actor, emotion=emotion, level=level or 0, sentence=sentence,
                                     video=str(video.resolve()), audio=audio, text=text,
                                     extra={"source": str(video.relative_to(root))})
                    why = check_emotion(emotion)
                    if why is None and level is None:
                        why = f"bad level folder {level_dir.name!r} (expected level_1, level_2 or level_3)"
                    if why is not None:
                        rec.status, rec.message = "failed", why
                    records.append(rec)
    if not records:
        raise EvpError(f"{root}: no MEAD clips found (expected <actor>/video/{view}/<emotion>/level_<k>/<NNN>.mp4"
                       + (f" for actors {','.join(sorted(keep_actors))}" if keep_actors else "") + ")")
    if unmapped:
        warnings.append(f"{unmapped} clip(s) missing from the sentence map {smap_path}: their clip number is used "
                        "as the sentence id")
    return records, warnings
