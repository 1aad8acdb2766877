"""The disentanglement stage's training data (``evp train --stage disentangle``): every clip's MFCC rows and windows
in memory (:class:`WindowBank`, :func:`load_bank`), the split of sentences into training and held-out ones
(:func:`split_sentences`), the aligned training tuples drawn from the pairs of build-pairs (:class:`TupleSampler`)
and the rows of augmented copies (:func:`variant_rows`). The training loop is :mod:`evpcli.train.disentangle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evpcli import audio
from evpcli.config import EMOTIONS
from evpcli.errors import EvpError
from evpcli.pairs import Pair, load_pairs
from evpcli.workspace import KIND_MFCC, Workspace, load_npz

@dataclass
class WindowBank:
    """Every clip's MFCC rows and windows in memory, and the pairs with their row maps.

    ``rows`` (R + 1, 12) float32: all clips' padded MFCC rows one after another (clip k from ``row_offsets[k]``),
    plus a final all-zero row (silence, what :func:`evpcli.audio.frame_windows` reads past a clip's end).
    ``windows`` (W, 28, 12) float32: each clip's own windows (clip k owns ``offsets[k] .. offsets[k+1]``), equal to
    ``frame_windows(mfcc, n_frames)``.
    """

    clip_ids: list[str]
    emotions: list[str]
    sentences: list[str]
    actors: list[str]
    rows: np.ndarray
    row_offsets: np.ndarray
    windows: np.ndarray
    offsets: np.ndarray
    pairs: list[Pair]
    pair_clips: list[tuple[int, int]]  # clip numbers of (clip_a, clip_b) of each pair
    content_rows: np.ndarray | None = None  # with DisentangleConfig.cmvn: ``rows`` normalised clip by clip

    def with_cmvn(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``rows`` (default :attr:`rows`; same layout) with each clip's rows normalised by that clip's own
        per-coefficient mean and std (what the content encoder reads with ``cmvn``)."""
        import torch

        from evpcli.nets.disentangle import cmvn_stats

        rows = self.rows if rows is None else rows
        out = rows.copy()
        for k in range(len(self.clip_ids)):
            a, b = self.row_offsets[k], self.row_offsets[k + 1]
            mean, std = cmvn_stats(torch.from_numpy(rows[a:b]))
            out[a:b] = (rows[a:b] - mean.numpy()) / std.numpy()
        return out

    def clip_windows(self, k: int) -> np.ndarray:
        return self.windows[self.offsets[k]:self.offsets[k + 1]]

    def n_frames(self, k: int) -> int:
        return int(self.offsets[k + 1] - self.offsets[k])

    def window_rows(self, src: int, frames: np.ndarray, dst: int | None = None, row_map: np.ndarray | None = None,
                    hop: int = 4, window: int = 28) -> np.ndarray:
        """Global row numbers (len(frames), window) of the windows of clip ``src``'s frames; with ``dst`` and
        ``row_map`` (src row -> dst row), the rows of clip ``dst`` warped onto ``src``'s time line instead."""
        local = hop * np.asarray(frames)[:, None] + np.arange(window)[None, :]
        n_src = self.row_offsets[src + 1] - self.row_offsets[src]
        inside = local < n_src
        local = np.minimum(local, n_src - 1)
        if dst is None:
            rows = self.row_offsets[src] + local
        else:
            rows = self.row_offsets[dst] + row_map[local]
        return np.where(inside, rows, len(self.rows) - 1)


def load_bank(ws: Workspace) -> WindowBank:
    clips = ws.clips(status="ok")
    pairs = load_pairs(ws)
    if not clips:
        raise EvpError(f"no prepared clips in {ws.root}; run `evp prepare-dataset` first")
    if not pairs:
        raise EvpError(f"no pairs in {ws.root}; run `evp build-pairs` first")
    mfcc_rows = {a["clip_id"]: a for a in ws.artifacts(KIND_MFCC)}
    rows, wins, row_offsets, offsets, keep = [], [], [0], [0], []
    for c in clips:
        if c.clip_id not in mfcc_rows:
            continue
        f = load_npz(mfcc_rows[c.clip_id]["path"])
        m = np.asarray(f["mfcc"], np.float32)
        w = audio.frame_windows(m, int(f["n_frames"]))
        rows.append(m)
        wins.append(w)
        row_offsets.append(row_offsets[-1] + len(m))
        offsets.append(offsets[-1] + len(w))
        keep.append(c)
    rows.append(np.zeros((1, rows[0].shape[1]), np.float32))
    index = {c.clip_id: k for k, c in enumerate(keep)}
    used = [p for p in pairs if p.clip_a in index and p.clip_b in index]
    return WindowBank([c.clip_id for c in keep], [c.emotion for c in keep], [c.sentence for c in keep],
                      [c.actor for c in keep], np.concatenate(rows), np.array(row_offsets, np.int64),
                      np.concatenate(wins).astype(np.float32), np.array(offsets, np.int64), used,
                      [(index[p.clip_a], index[p.clip_b]) for p in used])


def split_sentences(sentences: list[str], n_holdout: int) -> tuple[set[str], set[str]]:
    """(training, held-out) sentence ids: the last ``n_holdout`` ids in sorted order are held out."""
    ids = sorted(set(sentences))
    if n_holdout < 0 or n_holdout > len(ids) - 2:
        raise EvpError(f"cannot hold out {n_holdout} of {len(ids)} sentences: training needs at least 2 "
                       f"(use --holdout-sentences 0..{max(len(ids) - 2, 0)})")
    return set(ids[:len(ids) - n_holdout]), set(ids[len(ids) - n_holdout:])


class TupleSampler:
    """Draws aligned tuples (x_im, x_jn, x_in, x_jm) as rows of :attr:`WindowBank.rows`, with labels m and n.

    Pairs are grouped by actor and (unordered) emotion pair; a tuple takes two pairs of one group from different
    sentences. x_im is a window of the sentence-i clip in emotion m and x_in the window of its partner in emotion n
    warped onto x_im's time line (so they agree row by row); likewise x_jn is a window of the sentence-j clip in
    emotion n and x_jm its partner warped onto it.
    """

    def __init__(self, bank: WindowBank, first_sentences: set[str], second_sentences: set[str] | None = None):
        second_sentences = first_sentences if second_sentences is None else second_sentences
        groups: dict[tuple, list[int]] = {}
        for k, p in enumerate(bank.pairs):
            groups.setdefault((p.actor, frozenset((p.emotion_a, p.emotion_b))), []).append(k)
        self.bank = bank
        self.groups = []
        for members in groups.values():
            first = [k for k in members if bank.pairs[k].sentence in first_sentences]
            second = [k for k in members if bank.pairs[k].sentence in second_sentences]
            if first and any(bank.pairs[b].sentence != bank.pairs[a].sentence for a in first for b in second):
                self.groups.append((first, second))
        if not self.groups:
            raise EvpError("no actor has one emotion pair in two different sentences, so no training tuple can be "
                           "formed; add sentences or re-run `evp build-pairs` without --max-pairs-per-sentence")

    def _oriented(self, k: int, emotion: str) -> tuple[int, int, np.ndarray]:
        """(clip with ``emotion``, its partner, row map from the first to the second) of pair k."""
        p, (ka, kb) = self.bank.pairs[k], self.bank.pair_clips[k]
        return (ka, kb, p.map_ab) if p.emotion_a == emotion else (kb, ka, p.map_ba)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (n, 4, 28) int64 of (x_im, x_jn, x_in, x_jm) and labels (n, 2) int64 of (m, n)."""
        bank, pairs = self.bank, self.bank.pairs
        rows = np.empty((n, 4, 28), np.int64)
        labels = np.empty((n, 2), np.int64)
        for t in range(n):
            first, second = self.groups[rng.integers(len(self.groups))]
            a = first[rng.integers(len(first))]
            others = [b for b in second if pairs[b].sentence != pairs[a].sentence]
            b = others[rng.integers(len(others))]
            m = pairs[a].emotion_a if rng.random() < 0.5 else pairs[a].emotion_b
            n_ = pairs[a].emotion_b if pairs[a].emotion_a == m else pairs[a].emotion_a
            im, in_, map_i = self._oriented(a, m)
            jn, jm, map_j = self._oriented(b, n_)
            fi = rng.integers(bank.n_frames(im), size=1)
            fj = rng.integers(bank.n_frames(jn), size=1)
            rows[t, 0] = bank.window_rows(im, fi)[0]
            rows[t, 1] = bank.window_rows(jn, fj)[0]
            rows[t, 2] = bank.window_rows(im, fi, in_, map_i)[0]
            rows[t, 3] = bank.window_rows(jn, fj, jm, map_j)[0]
            labels[t] = (EMOTIONS.index(m), EMOTIONS.index(n_))
        return rows, labels


def variant_rows(bank: WindowBank, aug: dict[str, list[np.ndarray]], copy: int) -> np.ndarray:
    """Augmented copy ``copy`` of :attr:`WindowBank.rows` (same layout: each clip's rows at its offset, then the
    silence row); a copy whose length differs from the clip's own rows is cut or padded with silence."""
    out = bank.rows.copy()  # a clip without copies keeps its clean rows
    for k, cid in enumerate(bank.clip_ids):
        if len(aug.get(cid, [])) <= copy:
            continue
        a, b = bank.row_offsets[k], bank.row_offsets[k + 1]
        m = aug[cid][copy][: b - a]
        out[a:b] = 0.0
        out[a:a + len(m)] = m
    return out
