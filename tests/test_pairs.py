"""build-pairs: DTW against a plain dynamic programme, window alignment, caching, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evpcli import audio, media
from evpcli.cli import main
from evpcli.config import PairsConfig
from evpcli.dtw import band, dtw
from evpcli.pairs import align_windows, build_pairs, candidate_pairs, dtw_path, load_pairs, row_map
from evpcli.workspace import ClipRecord, Workspace, cache_key, save_npz


# --------------------------------------------------------------------------- helpers (also used by test_disentangle)
def add_clip(ws: Workspace, actor: str, emotion: str, level: int, sentence: str, wav: np.ndarray) -> str:
    """Index one clip and its MFCC artifact the way prepare-dataset does (audio only)."""
    clip_id = f"{actor}/{emotion}/level_{level}/{sentence}"
    n_frames = audio.n_video_frames(len(wav))
    m = audio.mfcc(wav)
    key = cache_key(clip_id, params={"n": len(wav), "sum": float(np.abs(wav).sum())})
    path = ws.path("mfcc", f"{clip_id.replace('/', '-')}-{key}.npz")
    save_npz(path, mfcc=m, rms=audio.frame_rms(wav, n_frames), n_frames=n_frames)
    ws.put_clips([ClipRecord(clip_id=clip_id, actor=actor, emotion=emotion, level=level, sentence=sentence,
                             video="", n_frames=n_frames, status="ok")])
    ws.put_artifact("mfcc", key, path, clip_id=clip_id)
    return clip_id


def speech(arctic_wav, start: float, seconds: float) -> np.ndarray:
    wav = media.load_audio(arctic_wav)
    return wav[int(start * 16000): int((start + seconds) * 16000)]


def emotional(wav: np.ndarray, emotion: str) -> np.ndarray:
    """A crude 'emotion': tempo, pitch and loudness changes of real speech (librosa), distinct per emotion."""
    import librosa

    rate, steps, gain = {"angry": (1.25, 2.0, 1.6), "sad": (0.75, -2.0, 0.5), "happy": (1.1, 4.0, 1.2),
                         "neutral": (1.0, 0.0, 1.0)}[emotion]
    out = librosa.effects.time_stretch(wav, rate=rate) if rate != 1.0 else wav
    out = librosa.effects.pitch_shift(out, sr=16000, n_steps=steps) if steps else out
    return (gain * out).astype(np.float32)


def plain_dtw(a: np.ndarray, b: np.ndarray, cost: str = "l1", allowed=None) -> float:
    """DTW written from the definition: D[i,j] = c(i,j) + min(D[i-1,j], D[i,j-1], D[i-1,j-1]); ``allowed(i, j)``
    (0-based rows) limits the cells a path may use."""
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if allowed is not None and not allowed(i - 1, j - 1):
                continue
            d = a[i - 1] - b[j - 1]
            c = np.abs(d).sum() if cost == "l1" else np.sqrt((d * d).sum())
            D[i, j] = c + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return float(D[n, m])


def path_cost(path: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[path[:, 0]] - b[path[:, 1]]).sum())


def check_path(path: np.ndarray, n: int, m: int) -> None:
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
    steps = {tuple(s) for s in np.diff(path, axis=0)}
    assert steps <= {(1, 0), (0, 1), (1, 1)}


# --------------------------------------------------------------------------- DTW
@pytest.fixture(scope="module")
def two_takes(arctic_wav):
    """MFCCs of one second of real speech and of the same second 30 % slower and pitched up."""
    w = speech(arctic_wav, 1.0, 0.6)
    return audio.mfcc(w), audio.mfcc(emotional(w, "sad"))


def test_l1_dtw_matches_plain_dynamic_programme(two_takes):
    a, b = two_takes
    path, cost = dtw_path(a, b)
    check_path(path, len(a), len(b))
    exact = plain_dtw(a.astype(np.float64), b.astype(np.float64), "l1")  # unquantised L1
    assert cost == pytest.approx(exact, rel=1e-12)  # the optimum (float64 sums in another order)
    assert path_cost(path, a.astype(np.float64), b.astype(np.float64)) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("frame_cost", ["l1", "l2"])
def test_dtw_is_optimal_on_random_sequences_with_ties_and_bands(frame_cost):
    """Many small cases, rounded values (ties) included, with and without a band: the optimum of the plain DP."""
    rng = np.random.default_rng(1)
    for trial in range(60):
        n, m = (int(x) for x in rng.integers(1, 25, 2))
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        if trial % 3 == 0:
            a, b = np.round(a), np.round(b)
        window = int(rng.integers(0, 5))
        path, cost = dtw(a, b, frame_cost, window)
        check_path(path, n, m)
        lo, hi = band(n, m, window)
        assert np.all((lo[path[:, 0]] <= path[:, 1]) & (path[:, 1] <= hi[path[:, 0]]))  # inside the band
        best = plain_dtw(a, b, frame_cost, allowed=lambda i, j, lo=lo, hi=hi: lo[i] <= j <= hi[i])
        assert cost == pytest.approx(best, rel=1e-12, abs=1e-12)
        d = a[path[:, 0]] - b[path[:, 1]]
        along = np.abs(d).sum() if frame_cost == "l1" else np.sqrt((d * d).sum(1)).sum()
        assert along == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_band_follows_the_diagonal_of_unequal_lengths(two_takes):
    a, b = two_takes  # b is ~1.3x longer
    lo, hi = band(len(a), len(b), 5)
    centre = np.arange(len(a)) * (len(b) - 1) / (len(a) - 1)
    assert lo[0] == 0 and hi[-1] == len(b) - 1
    assert np.all(lo <= hi) and np.all(lo[1:] <= hi[:-1] + 1)  # every row reachable from the one before
    assert np.all(np.abs(lo - centre) <= 5 + 1) and np.all(np.abs(hi - centre) <= 5 + 1)
    exact = dtw_path(a, b)[1]
    banded_path, banded = dtw_path(a, b, PairsConfig(window=5))
    assert banded >= exact - 1e-9
    assert np.all(np.abs(banded_path[:, 1] - centre[banded_path[:, 0]]) <= 6)
    assert dtw_path(a, b, PairsConfig(window=len(b)))[1] == pytest.approx(exact, rel=1e-12)  # a band wider than b


def test_l2_dtw_matches_plain_dynamic_programme(two_takes):
    a, b = two_takes
    path, cost = dtw_path(a, b, PairsConfig(frame_cost="l2"))
    check_path(path, len(a), len(b))
    assert cost == pytest.approx(plain_dtw(a.astype(np.float64), b.astype(np.float64), "l2"), rel=1e-6)


def test_alignment_follows_a_known_time_stretch(arctic_wav):
    """b is a played 1.5x slower: window t of a must align with window ~1.5 t of b."""
    import librosa

    wav = speech(arctic_wav, 0.5, 2.0)
    slow = librosa.effects.time_stretch(wav, rate=1 / 1.5)
    a, b = audio.mfcc(wav), audio.mfcc(slow)
    na, nb = audio.n_video_frames(len(wav)), audio.n_video_frames(len(slow))
    path, _ = dtw_path(a, b)
    idx = align_windows(path, na, nb)
    assert idx.shape == (na, 2) and idx.dtype == np.int32
    assert np.array_equal(idx[:, 0], np.arange(na))
    assert np.all(np.diff(idx[:, 1]) >= 0) and idx[:, 1].max() < nb
    inner = slice(5, na - 5)
    err = np.abs(idx[inner, 1] - 1.5 * idx[inner, 0])
    assert np.median(err) <= 1.5, err
    # the row maps warp each clip onto the other's time line: row r of a <-> row ~1.5 r of b (12 padded rows
    # of silence at the start of both)
    fwd, back = row_map(path, len(a)), row_map(path[:, ::-1], len(b))
    assert fwd.shape == (len(a),) and back.shape == (len(b),)
    assert np.all(np.diff(fwd) >= 0) and np.all(np.diff(back) >= 0)
    r = np.arange(30, len(a) - 30)
    assert np.median(np.abs(fwd[r] - (12 + 1.5 * (r - 12)))) <= 3
    s = np.arange(45, len(b) - 45)
    assert np.median(np.abs(back[s] - (12 + (s - 12) / 1.5))) <= 2


def test_align_windows_on_an_identity_path():
    path = np.stack([np.arange(60), np.arange(60)], axis=1)  # 60 rows ~ (60 - 28) / 4 + 1 frames
    idx = align_windows(path, 9, 9)
    assert np.array_equal(idx[:, 0], idx[:, 1])


def test_candidate_pairs_differ_in_emotion_and_respect_the_cap():
    group = [ClipRecord(f"A/{e}/level_{lv}/001", "A", e, lv, "001", "") for e in ("angry", "happy", "sad")
             for lv in (1, 3)]
    allp = candidate_pairs(group)
    assert len(allp) == 12  # 15 pairs of 6 clips, minus the 3 same-emotion pairs
    assert all(group[a].emotion != group[b].emotion for a, b in allp)
    capped = candidate_pairs(group, max_pairs=3, seed=0)
    assert len(capped) == 3
    combos = {frozenset((group[a].emotion, group[b].emotion)) for a, b in capped}
    assert len(combos) == 3  # the cap keeps one pair of each emotion combination first
    assert capped == candidate_pairs(group, max_pairs=3, seed=0)


# --------------------------------------------------------------------------- the stage
@pytest.fixture(scope="module")
def small_ws(tmp_path_factory, arctic_wav):
    ws = Workspace(tmp_path_factory.mktemp("pairs") / "ws")
    for s, start in (("001", 0.4), ("002", 2.0)):
        base = speech(arctic_wav, start, 1.2)
        for emo in ("neutral", "angry", "sad"):
            add_clip(ws, "A", emo, 1, s, emotional(base, emo))
    add_clip(ws, "A", "happy", 1, "003", emotional(speech(arctic_wav, 1.0, 1.0), "happy"))  # nothing to pair
    return ws


def test_build_pairs_aligns_caches_and_loads(small_ws):
    s = build_pairs(small_ws)
    assert s.pairs == 6 and s.groups == 2 and s.pairs_computed == 6
    assert s.skipped_sentences == ["A/003"]
    assert s.mean_warp_ratio >= 1.0 and s.mean_cost_per_step > 0
    pairs = load_pairs(small_ws)
    assert len(pairs) == 6
    for p in pairs:
        assert p.emotion_a != p.emotion_b and p.clip_a.endswith(p.sentence) and p.clip_b.endswith(p.sentence)
        na = small_ws.get_clip(p.clip_a).n_frames
        nb = small_ws.get_clip(p.clip_b).n_frames
        assert p.index.shape == (na, 2) and p.index[:, 1].max() < nb
    # sad is 0.75x tempo: its aligned frames advance faster than the angry clip's (1.25x)
    p = next(p for p in pairs if {p.emotion_a, p.emotion_b} == {"angry", "sad"} and p.sentence == "001")
    slope = np.polyfit(p.index[:, 0], p.index[:, 1], 1)[0]
    assert (slope > 1.3) if p.emotion_a == "angry" else (slope < 0.8)
    again = build_pairs(small_ws)
    assert again.pairs == 6 and again.pairs_computed == 0 and again.groups_cached == 2


def test_build_pairs_in_worker_processes_gives_the_same_pairs(small_ws, tmp_path):
    import shutil

    small_ws.close()
    shutil.copytree(small_ws.root, tmp_path / "ws")
    ws2 = Workspace(tmp_path / "ws")
    cfg = PairsConfig(frame_cost="l2", seed=3)  # new parameters: every group is aligned again
    s1 = build_pairs(small_ws, cfg=cfg)
    s2 = build_pairs(ws2, cfg=cfg, jobs=2)
    assert s1.pairs_computed == s2.pairs_computed == 6
    for p, q in zip(load_pairs(small_ws), load_pairs(ws2), strict=True):
        assert (p.clip_a, p.clip_b, p.cost) == (q.clip_a, q.clip_b, q.cost)
        assert np.array_equal(p.map_ab, q.map_ab) and np.array_equal(p.index, q.index)


def test_build_pairs_cli_json_and_cap(small_ws, capsys):
    assert main(["--workspace", str(small_ws.root), "-q", "build-pairs", "--max-pairs-per-sentence", "2", "--frame-cost", "l2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pairs"] == 4 and out["groups"] == 2
    assert len(load_pairs(small_ws)) == 4  # the newest build of each group is what training sees


def test_build_pairs_cli_window(small_ws, capsys):
    assert main(["--workspace", str(small_ws.root), "-q", "build-pairs", "--window", "15", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pairs"] == 6 and out["pairs_computed"] == 6  # a band is another cache key
    arts = small_ws.artifacts("pairs")
    assert arts[-1]["params"]["window"] == 15
    assert main(["--workspace", str(small_ws.root), "build-pairs", "--window", "-1"]) == 2


def test_build_pairs_on_empty_workspace_says_what_to_do(tmp_path, capsys):
    assert main(["--workspace", str(tmp_path / "ws"), "build-pairs"]) == 1
    assert "prepare-dataset" in capsys.readouterr().err
