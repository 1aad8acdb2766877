"""A user's own labelled clips, listed in a CSV manifest.

Columns (header row required): ``video,audio,actor,emotion,level,sentence``; optional ``text`` (the words) and
``clip`` (the clip number NNN; default: the row's rank among the rows of the same actor, emotion and level,
001, 002, ...). ``audio`` may be empty (or the column absent): the video's own audio track is used. Relative
paths are relative to the CSV's folder. ``level`` is 1-3 (``level_2`` also reads). ``sentence`` is any id;
clips of one actor with equal ids say the same text (pairing needs it); empty falls back to the clip number.

Each row becomes a :class:`~evpcli.workspace.ClipRecord` with clip id ``actor/emotion/level_k/NNN``; a row that
cannot be a clip (unknown emotion, bad level, duplicate id) comes back with ``status="failed"`` and the reason
in ``message``, so the run goes on and the report lists it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from evpcli.config import EMOTIONS, LEVELS
from evpcli.errors import EvpError
from evpcli.workspace import ClipRecord

REQUIRED = ("video", "actor", "emotion", "level", "sentence")


def parse_level(value: str) -> int | None:
    """``"2"`` or ``"level_2"`` -> 2; None when it is not one of MEAD's levels."""
    v = str(value).strip().lower().removeprefix("level_").removeprefix("level")
    try:
        level = int(v)
    except ValueError:
        return None
    return level if level in LEVELS else None


def clip_id(actor: str, emotion: str, level: int | str, number: str) -> str:
    """``actor/emotion/level_k/NNN``."""
    return f"{actor}/{emotion}/level_{level}/{number}"


def check_emotion(emotion: str) -> str | None:
    """Why ``emotion`` is not usable, or None."""
    if emotion in EMOTIONS:
        return None
    return f"unknown emotion {emotion!r} (expected one of {', '.join(EMOTIONS)})"


_FIELDS = "\0fields"  # (fields in the row, fields in the header), kept with each row while reading


def _not_a_clip(path: Path, line: int, reason: str) -> ClipRecord:
    """A row that names no clip (no usable actor, emotion or level, or misaligned fields): reported by its line,
    not indexed as a clip (``extra["not_a_clip"]``)."""
    return ClipRecord(clip_id=f"{path.name}:{line}", actor="", emotion="", level=0, sentence="", video="",
                      status="failed", message=f"{path.name} line {line}: {reason}",
                      extra={"source": f"{path.name}:{line}", "not_a_clip": True})


def read_manifest(path: str | os.PathLike) -> tuple[list[ClipRecord], list[str]]:
    """Clips of a manifest CSV (see the module docstring) and warnings (one line each).

    Raises :class:`EvpError` when the file is missing or lacks a required column.
    """
    path = Path(path)
    if path.is_dir():
        raise EvpError(f"{path} is a folder; --layout manifest takes a CSV file (for a folder in MEAD's layout use "
                       "--layout mead)")
    if not path.is_file():
        raise EvpError(f"{path}: manifest not found")
    base = path.resolve().parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise EvpError(f"{path}: manifest lacks column(s) {', '.join(missing)}; expected a header "
                           "video,audio,actor,emotion,level,sentence")
        rows = []
        for row in reader:
            n_fields = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            clean[_FIELDS] = (n_fields, len(reader.fieldnames or []))
            rows.append(clean)
    records: list[ClipRecord] = []
    warnings: list[str] = []
    counters: dict[tuple, int] = {}
    seen: set[str] = set()
    no_sentence = 0
    for line, row in enumerate(rows, start=2):
        n_fields, n_header = row.pop(_FIELDS)
        if n_fields != n_header:  # a short or long row: its values sit under the wrong columns
            records.append(_not_a_clip(path, line, f"has {n_fields} fields, the header has {n_header} (a missing or "
                                                   "extra comma?)"))
            continue
        actor, emotion = row.get("actor", ""), row.get("emotion", "").lower()
        video = row.get("video", "")
        audio = row.get("audio", "")
        video_path = str((base / video).resolve()) if video else ""
        audio_path = str((base / audio).resolve()) if audio else ""
        level = parse_level(row.get("level", ""))
        if not actor or "/" in actor or not emotion or "/" in emotion or level is None:  # no clip id to index it by
            why = (f"bad actor name {actor!r} (non-empty, no '/')" if not actor or "/" in actor else
                   f"bad emotion {emotion!r} (expected one of {', '.join(EMOTIONS)})" if not emotion or "/" in emotion
                   else f"bad level {row.get('level', '')!r} (expected 1, 2 or 3)")
            records.append(_not_a_clip(path, line, why))
            continue
        group = (actor, emotion, level)
        counters[group] = counters.get(group, 0) + 1
        number = row.get("clip", "") or f"{counters[group]:03d}"
        cid = clip_id(actor, emotion, level, number)
        sentence = row.get("sentence", "")
        if not sentence:
            sentence, no_sentence = number, no_sentence + 1
        rec = ClipRecord(clip_id=cid, actor=actor, emotion=emotion, level=level or 0, sentence=sentence,
                         video=video_path, audio=audio_path, text=row.get("text", ""),
                         extra={"source": f"{path.name}:{line}"})
        reason = None
        if not video:
            reason = "no video given"
        elif (why := check_emotion(emotion)) is not None:
            reason = why
        elif cid in seen:
            reason = f"duplicate clip id {cid} (give a distinct 'clip' number)"
        if reason is not None:
            rec.status, rec.message = "failed", f"{path.name} line {line}: {reason}"
        seen.add(cid)
        records.append(rec)
    if not records:
        raise EvpError(f"{path}: manifest has no rows")
    if no_sentence:
        warnings.append(f"{no_sentence} manifest row(s) have no sentence id; their clip number is used instead")
    return records, warnings
