"""Pseudo training pairs (``evp build-pairs``): the same sentence in two emotions, aligned by DTW over MFCCs.

MEAD has every actor say the same sentences in every emotion, so two clips of one sentence differ (mostly) in
emotion. EVP aligns them with dynamic time warping over their MFCC rows (frame cost L1, steps (i+1, j), (i, j+1),
(i+1, j+1)); the warping path maps one clip onto the other's time line, so "the same window index" means "the same
content" and the pair gives aligned network inputs x(i,m), x(i,n).

The DTW is exact and compiled (:func:`evpcli.dtw.dtw`, numba): the optimum of the unquantised L1 frame cost,
and faster than the earlier dtaidistance C DTW over thermometer codes, which was exact only on a 2-unit grid
(``benchmarks/bench_pairs.py`` keeps it and prints both speeds). ``PairsConfig.window`` restricts it to a Sakoe-Chiba band.
The tests check paths and costs against a plain dynamic programme.

A pair stores the warping both ways as row maps (for every MFCC row of a, the matched row of b, and back), which
is how training cuts the other clip's windows *on this clip's time line* (as in the paper: the window of x(i,n)
for frame t of x(i,m) is rows ``map[4 t .. 4 t + 28]`` of x(i,n), so the two windows agree row by row). It also
stores, for every video frame t of clip a, the aligned video frame of clip b (the window of frame t is centred on
padded row ``4 t + 14``; the mean matched row of b, mapped back to a frame, is the aligned window of b).

Pairs are cached per (actor, sentence) group in one ``pairs`` artifact (an .npz, see :func:`load_pairs`), keyed by
the MFCC artifacts of the group's clips and the parameters; re-running reuses every group whose clips did not
change.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from evpcli.config import AudioConfig, PairsConfig
from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.workspace import KIND_MFCC, KIND_PAIRS, ClipRecord, Workspace, cache_key, load_npz, save_npz

DEFAULT_AUDIO = AudioConfig()


# --------------------------------------------------------------------------- DTW
def dtw_path(a: np.ndarray, b: np.ndarray, cfg: PairsConfig = PairsConfig()) -> tuple[np.ndarray, float]:
    """DTW of two MFCC sequences (N, 12) and (M, 12): the optimal path for ``cfg`` (frame cost, band).

    Returns the warping path as (L, 2) int64 row pairs from (0, 0) to (N-1, M-1), each step one of (1, 0),
    (0, 1), (1, 1), and the total cost: the sum of frame costs along the path (L1 for ``frame_cost="l1"``,
    Euclidean for ``"l2"``), computed in float64.
    """
    from evpcli.dtw import dtw

    if len(a) == 0 or len(b) == 0:
        raise EvpError("cannot align an empty MFCC sequence; re-run `evp prepare-dataset`")
    if cfg.frame_cost not in ("l1", "l2"):
        raise EvpError(f"unknown DTW frame cost {cfg.frame_cost!r}; use l1 or l2")
    if cfg.window < 0:
        raise EvpError(f"DTW window must be 0 (none) or a number of MFCC rows, got {cfg.window}")
    return dtw(a, b, cfg.frame_cost, cfg.window)


def align_windows(path: np.ndarray, n_frames_a: int, n_frames_b: int, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """Aligned window indices from a row-level warping path: (n_frames_a, 2) int32, columns (frame of a, frame of b).

    The window of video frame t spans padded MFCC rows ``h t .. h t + 28`` (h = 4), centred on row ``h t + 14``.
    The rows of b that the path matches to that row of a are averaged and mapped back to the frame whose window
    is centred there (rounded, clipped to b's frames).
    """
    h, half = cfg.hop_per_frame, cfg.window // 2
    rows_a, rows_b = path[:, 0], path[:, 1]
    n_rows_a = int(rows_a.max()) + 1
    sums = np.bincount(rows_a, weights=rows_b, minlength=n_rows_a)
    counts = np.bincount(rows_a, minlength=n_rows_a)
    centre_b = sums / np.maximum(counts, 1)  # mean matched row of b for every row of a
    centres_a = np.clip(h * np.arange(n_frames_a) + half, 0, n_rows_a - 1)
    frames_b = np.clip(np.rint((centre_b[centres_a] - half) / h), 0, n_frames_b - 1).astype(np.int32)
    return np.stack([np.arange(n_frames_a, dtype=np.int32), frames_b], axis=1)


def row_map(path: np.ndarray, n_rows: int) -> np.ndarray:
    """For every row of the first sequence, the (rounded mean) row of the second that the path matches: (n_rows,)
    int32, non-decreasing. Use ``path[:, ::-1]`` for the other direction."""
    sums = np.bincount(path[:, 0], weights=path[:, 1], minlength=n_rows)
    counts = np.bincount(path[:, 0], minlength=n_rows)
    return np.rint(sums / np.maximum(counts, 1)).astype(np.int32)


# --------------------------------------------------------------------------- pairs
@dataclass
class Pair:
    """Two clips of one actor and sentence in different emotions, aligned window by window.

    ``index`` (K, 2) int32: rows (frame of a, frame of b) whose MFCC windows say the same thing.
    ``map_ab`` (rows of a,) int32: the row of b matched to each MFCC row of a; ``map_ba`` the other way.
    ``cost``: the DTW cost; ``warp``: path length / the longer clip's MFCC rows (1.0: no time warping).
    """

    actor: str
    sentence: str
    clip_a: str
    clip_b: str
    emotion_a: str
    emotion_b: str
    cost: float
    warp: float
    index: np.ndarray
    map_ab: np.ndarray
    map_ba: np.ndarray


@dataclass
class PairsSummary:
    groups: int = 0  # (actor, sentence) groups with at least one pair
    groups_cached: int = 0  # groups reused from the cache
    pairs: int = 0
    pairs_computed: int = 0  # pairs aligned in this run (others came from the cache)
    aligned_windows: int = 0
    mean_warp_ratio: float = 0.0  # mean over pairs of path length / longer clip's MFCC rows
    mean_cost_per_step: float = 0.0  # mean DTW frame cost along the paths (MFCC units, L1 or Euclidean)
    seconds: float = 0.0
    pairs_per_second: float = 0.0  # pairs aligned per second in this run
    skipped_sentences: list = field(default_factory=list)  # actor/sentence with clips in one emotion only

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        skipped = f"; {len(self.skipped_sentences)} sentences had one emotion only" if self.skipped_sentences else ""
        return (f"{self.pairs} pairs in {self.groups} actor/sentence groups ({self.pairs_computed} aligned now at "
                f"{self.pairs_per_second:.1f} pairs/s, {self.groups_cached} groups cached); {self.aligned_windows} "
                f"aligned windows, mean warp ratio {self.mean_warp_ratio:.3f}{skipped}")


def _groups(clips: list[ClipRecord]) -> dict[tuple[str, str], list[ClipRecord]]:
    groups: dict[tuple[str, str], list[ClipRecord]] = {}
    for c in clips:
        groups.setdefault((c.actor, c.sentence), []).append(c)
    return {k: sorted(v, key=lambda c: c.clip_id) for k, v in sorted(groups.items())}


def candidate_pairs(group: list[ClipRecord], max_pairs: int = 0, seed: int = 0) -> list[tuple[int, int]]:
    """Index pairs (a, b), a < b, of clips in different emotions; at most ``max_pairs`` (0: all).

    When capped, the kept pairs are a seeded random choice that covers as many emotion pairs as possible.
    """
    pairs = [(a, b) for a, b in itertools.combinations(range(len(group)), 2) if group[a].emotion != group[b].emotion]
    if max_pairs <= 0 or len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng([seed, len(group), len(pairs)])
    order = rng.permutation(len(pairs))
    seen: set[frozenset] = set()
    first, rest = [], []
    for k in order:  # one pair per emotion combination first, then the remaining ones
        a, b = pairs[k]
        combo = frozenset((group[a].emotion, group[b].emotion))
        (rest if combo in seen else first).append(pairs[k])
        seen.add(combo)
    return sorted((first + rest)[:max_pairs])


def build_pairs(ws: Workspace, max_pairs_per_sentence: int = 0, progress: Progress | None = None,
                cfg: PairsConfig | None = None, jobs: int = 1, executor: str = "local",
                ray_address: str | None = None) -> PairsSummary:
    """Align every pair of clips of one actor and sentence in different emotions; cache them per group.

    Needs ``ok`` clips with ``mfcc`` artifacts in the index (``evp prepare-dataset``). ``cfg`` sets the frame cost
    and the cap (``max_pairs_per_sentence``, when non-zero, overrides the cap of ``cfg``); ``jobs`` > 1 aligns
    groups in that many worker processes, ``executor="ray"`` in Ray tasks (:mod:`evpcli.executors`: a local Ray
    of ``jobs`` CPUs, or the cluster at ``ray_address``). Each worker writes its group's artifact file; this
    process alone writes the index. Returns counts, the mean warp ratio and the alignment speed; raises
    :class:`EvpError` when nothing can be paired.
    """
    from evpcli.executors import make_executor, open_executor

    make_executor(executor, jobs, ray_address)  # a bad choice fails before any work
    cfg = cfg or PairsConfig()
    if max_pairs_per_sentence:
        cfg = replace(cfg, max_pairs_per_sentence=max_pairs_per_sentence)
    clips = ws.clips(status="ok")
    if not clips:
        raise EvpError(f"no prepared clips in {ws.root}; run `evp prepare-dataset` first")
    mfcc_rows = {a["clip_id"]: a for a in ws.artifacts(KIND_MFCC)}  # newest last, so the dict keeps the newest
    missing = [c.clip_id for c in clips if c.clip_id not in mfcc_rows]
    if missing:
        raise EvpError(f"{len(missing)} clips have no MFCC (first: {missing[0]}); re-run `evp prepare-dataset`")
    cached = {a["key"]: a for a in ws.artifacts(KIND_PAIRS)}
    newest = {(a["meta"].get("actor"), a["meta"].get("sentence")): k for k, a in cached.items()
              if isinstance(a["meta"], dict)}  # rows come oldest first
    groups = _groups(clips)
    plan = []
    summary = PairsSummary()
    for (actor, sentence), group in groups.items():
        cand = candidate_pairs(group, cfg.max_pairs_per_sentence, cfg.seed)
        if not cand:
            summary.skipped_sentences.append(f"{actor}/{sentence}")
            continue
        key = cache_key(*[mfcc_rows[c.clip_id]["key"] for c in group], params={"pairs": asdict(cfg), "version": 3})
        plan.append((actor, sentence, group, cand, key))

    t0 = time.perf_counter()
    warps, costs, reuse = [], [], []
    todo = [p for p in plan if p[4] not in cached]
    jobs_list = [{"mfcc_paths": [str(mfcc_rows[c.clip_id]["path"]) for c in group], "cand": cand, "cfg": cfg,
                  "clips": [c.clip_id for c in group], "emotions": [c.emotion for c in group],
                  "path": str(ws.path(KIND_PAIRS, f"{actor}-{sentence}-{key}.npz".replace("/", "_")))}
                 for actor, sentence, group, cand, key in todo]
    stats: dict[str, dict] = {}  # group key -> what its aligned artifact holds, for the summary
    # the executor is entered before the progress bar starts (a local pool forks while this process has one thread)
    with open_executor(executor, jobs, ray_address, n_jobs=len(todo)) as pool, \
            (progress or Progress()).task("build-pairs", total=sum(len(p[3]) for p in plan), unit="pairs") as bar:
        for i, result, error in pool.run(align_group, jobs_list):
            actor, sentence, _, cand, key = todo[i]
            if error is not None:
                raise error
            ws.put_artifact(KIND_PAIRS, key, result["path"], params=asdict(cfg),
                            meta={"actor": actor, "sentence": sentence, "n_pairs": len(cand)})
            stats[key] = result
            summary.pairs_computed += len(cand)
            bar.advance(len(cand))
        for actor, sentence, _, cand, key in plan:
            if key in cached:
                data = load_npz(cached[key]["path"])
                if newest.get((actor, sentence)) != key:  # another setting's pairs of this group were made later
                    reuse.append(cached[key])
                summary.groups_cached += 1
                summary.aligned_windows += len(data["index"])
                bar.advance(len(cand))
            else:
                data = stats[key]
                summary.aligned_windows += data["n_windows"]
            summary.groups += 1
            summary.pairs += len(data["cost"])
            warps.append(data["warp"])
            costs.append(data["cost_per_step"])
    for row in reuse:  # the groups reused become the newest of their group again: the pairs in use (load_pairs)
        ws.put_artifact(KIND_PAIRS, row["key"], row["path"], params=row["params"], meta=row["meta"])
    summary.seconds = time.perf_counter() - t0
    if summary.pairs_computed:
        summary.pairs_per_second = summary.pairs_computed / max(summary.seconds, 1e-9)
    if warps:
        summary.mean_warp_ratio = float(np.concatenate(warps).mean())
        summary.mean_cost_per_step = float(np.concatenate(costs).mean())
    if not summary.pairs:
        raise EvpError("no sentence was recorded in two emotions by one actor, so there is nothing to pair; "
                       "check the sentence ids (--sentence-map in prepare-dataset)")
    return summary


def align_group(job: dict) -> dict:
    """A worker's job: the DTW of one group's candidate pairs, written atomically to ``job["path"]`` (the ``pairs``
    artifact, see :func:`load_pairs`). ``job``: ``mfcc_paths`` (the group's MFCC artifact files), ``clips`` and
    ``emotions`` (the group's clip ids and emotions, same order), ``cand`` (index pairs), ``cfg`` (PairsConfig).
    Returns ``{path, cost, cost_per_step, warp, n_windows}`` (the per-pair arrays the summary needs)."""
    data = {"clips": np.array(job["clips"]), "emotions": np.array(job["emotions"]),
            **_align_pairs(job["mfcc_paths"], job["cand"], job["cfg"])}
    save_npz(job["path"], **data)
    return {"path": job["path"], "cost": data["cost"], "cost_per_step": data["cost_per_step"], "warp": data["warp"],
            "n_windows": len(data["index"])}


def _align_pairs(mfcc_paths: list[str], cand: list[tuple[int, int]], cfg: PairsConfig) -> dict:
    """DTW of the candidate pairs of one group (clips given by their MFCC artifact files): the arrays of its
    ``pairs`` artifact but the clip names."""
    feats = {}
    for k in sorted({i for p in cand for i in p}):
        f = load_npz(mfcc_paths[k])
        feats[k] = (np.asarray(f["mfcc"], np.float32), int(f["n_frames"]))
    costs, warps, per_step, indices, maps_ab, maps_ba = [], [], [], [], [], []
    for a, b in cand:
        (ma, na), (mb, nb) = feats[a], feats[b]
        path, cost = dtw_path(ma, mb, cfg)
        indices.append(align_windows(path, na, nb))
        maps_ab.append(row_map(path, len(ma)))
        maps_ba.append(row_map(path[:, ::-1], len(mb)))
        costs.append(cost)
        per_step.append(cost / len(path))
        warps.append(len(path) / max(len(ma), len(mb)))
    def offsets_of(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(i) for i in arrays])]).astype(np.int64)

    return {
        "pair_a": np.array([a for a, _ in cand], np.int32),
        "pair_b": np.array([b for _, b in cand], np.int32),
        "cost": np.array(costs, np.float64),
        "cost_per_step": np.array(per_step, np.float64),
        "warp": np.array(warps, np.float64),
        "offsets": offsets_of(indices),
        "index": np.concatenate(indices).astype(np.int32),
        "map_ab_offsets": offsets_of(maps_ab),
        "map_ab": np.concatenate(maps_ab),
        "map_ba_offsets": offsets_of(maps_ba),
        "map_ba": np.concatenate(maps_ba),
    }


def load_pairs(ws: Workspace) -> list[Pair]:
    """Every pair of the newest ``pairs`` artifact of each (actor, sentence) group, in a stable order."""
    newest: dict[tuple[str, str], dict] = {}
    for a in ws.artifacts(KIND_PAIRS):  # ordered by creation time
        meta = a["meta"] if isinstance(a["meta"], dict) else {}
        newest[(meta.get("actor", ""), meta.get("sentence", ""))] = a
    out = []
    for (actor, sentence), art in sorted(newest.items()):
        d = load_npz(art["path"])
        clips, emotions = d["clips"], d["emotions"]
        for k, (a, b) in enumerate(zip(d["pair_a"], d["pair_b"], strict=True)):
            out.append(Pair(actor, sentence, str(clips[a]), str(clips[b]), str(emotions[a]), str(emotions[b]),
                            float(d["cost"][k]), float(d["warp"][k]), _part(d, "index", k), _part(d, "map_ab", k),
                            _part(d, "map_ba", k)))
    return out


def _part(d: dict[str, np.ndarray], name: str, k: int) -> np.ndarray:
    """Pair k's slice of a concatenated per-pair array of a pairs artifact."""
    offsets = d["offsets" if name == "index" else f"{name}_offsets"]
    return d[name][offsets[k]:offsets[k + 1]]
