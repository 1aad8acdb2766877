"""`evp prepare-dataset`: MEAD layout and manifest, artifacts and index, bad clips, caching, interruption."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from evpcli.cli import main
from evpcli.media import write_video
from evpcli.actors import load_actor
from evpcli.prepare import REPORT_NAME, prepare_dataset
from evpcli.workspace import Workspace
from tests.conftest import moving_square_frames, sine, stop_after
from tests.test_landmarks import _jitter, _lag, moving_portrait

N_FRAMES = 30  # 1.2 s at 25 fps


def _write_clip(path: Path, frames: np.ndarray, wav: np.ndarray | None = None) -> Path:
    return write_video(path, frames, fps=25.0, audio=wav)


@pytest.fixture(scope="module")
def mead_corpus(tmp_path_factory) -> dict:
    """A tiny MEAD-layout corpus: actors A1, A2 x (neutral level_1, happy level_3) x clips 001, 002, a clip under
    an unknown emotion folder, a sentence map that swaps the happy clips' sentences, and ground truth."""
    from evpcli.media import save_wav

    root = tmp_path_factory.mktemp("mead")
    truth = {}
    rows = []
    k = 0
    for actor in ("A1", "A2"):
        for emotion, level in (("neutral", 1), ("happy", 3)):
            for number in ("001", "002"):
                frames, gt = moving_portrait(N_FRAMES, phase=7.0 * k)
                wav = sine(N_FRAMES / 25, freq=200 + 40 * k)
                video = root / actor / "video" / "front" / emotion / f"level_{level}" / f"{number}.mp4"
                if actor == "A1":  # audio beside the video, MEAD style
                    _write_clip(video, frames)
                    save_wav(root / actor / "audio" / emotion / f"level_{level}" / f"{number}.wav", wav)
                else:  # the video's own track
                    _write_clip(video, frames, wav)
                cid = f"{actor}/{emotion}/level_{level}/{number}"
                truth[cid] = gt
                sentence = f"s{number}" if emotion == "neutral" else f"s{'002' if number == '001' else '001'}"
                rows.append({"clip": cid, "sentence": sentence, "text": f"text of {sentence}"})
                k += 1
    frames, _ = moving_portrait(N_FRAMES)
    _write_clip(root / "A1" / "video" / "front" / "bored" / "level_1" / "001.mp4", frames, sine(N_FRAMES / 25))
    with open(root / "sentences.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["clip", "sentence", "text"])
        w.writeheader()
        w.writerows(rows)
    return {"root": root, "truth": truth, "rows": {r["clip"]: r for r in rows}}


def test_mead_layout_indexes_every_clip_with_landmarks_near_the_truth(mead_corpus, tmp_path, capsys):
    ws_dir = tmp_path / "ws"
    rc = main(["-q", "--workspace", str(ws_dir), "prepare-dataset", str(mead_corpus["root"]), "--layout", "mead",
               "--jobs", "2", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 9 and report["ok"] == 8 and report["prepared"] == 8
    assert [f["clip_id"] for f in report["failed"]] == ["A1/bored/level_1/001"]
    assert "unknown emotion 'bored'" in report["failed"][0]["reason"]
    assert json.loads((ws_dir / REPORT_NAME).read_text())["ok"] == 8

    ws = Workspace(ws_dir)
    clips = {c.clip_id: c for c in ws.clips()}
    assert set(clips) == set(mead_corpus["truth"])
    errors = []
    for cid, gt in mead_corpus["truth"].items():
        c = clips[cid]
        actor, emotion, level, number = cid.split("/")
        assert (c.actor, c.emotion, f"level_{c.level}") == (actor, emotion, level)
        assert c.sentence == mead_corpus["rows"][cid]["sentence"] and c.text.startswith("text of")
        assert c.n_frames == N_FRAMES and c.fps == 25.0
        lm = ws.load_clip_feature("landmarks", cid)
        assert lm["landmarks"].shape == (N_FRAMES, 68, 2) and lm["normalised"].shape == (N_FRAMES, 68, 2)
        assert lm["transforms"].shape == (N_FRAMES, 2, 3) and lm["detected"].all() and lm["valid"].all()
        errors.append(np.linalg.norm(lm["landmarks"] - gt, axis=-1).mean())
        m = ws.load_clip_feature("mfcc", cid)
        assert m["mfcc"].shape[1] == 12 and abs(len(m["mfcc"]) - (N_FRAMES * 4 + 24)) <= 4
        assert m["rms"].shape == (N_FRAMES,) and int(m["n_frames"]) == N_FRAMES
        assert m["rms"][5:-5].min() > 0.1  # the sine is there under every frame (own track or the .wav)
    assert np.mean(errors) <= 4.0 and max(errors) <= 4.0, errors
    for actor in ("A1", "A2"):
        model = load_actor(ws, actor)
        assert model["reference"].shape == (68, 2) and model["pca_components"].shape == (16, 136)
        assert model["pca_mean"].shape == (136,) and model["pca_variance"].shape == (16,)
        assert model["meta"]["reference_from"] == "neutral" and model["meta"]["n_clips"] == 4
        neutral = np.concatenate([ws.load_clip_feature("landmarks", c)["normalised"] for c in clips
                                  if c.startswith(f"{actor}/neutral")])
        assert np.allclose(model["reference"], neutral.mean(0), atol=1e-3)

    # a second run does no work
    t0 = time.perf_counter()
    rc = main(["-q", "--workspace", str(ws_dir), "prepare-dataset", str(mead_corpus["root"]), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert rc == 0 and again["prepared"] == 0 and again["cached"] == 8 and again["actor_models"] == []
    assert len(again["failed"]) == 1 and time.perf_counter() - t0 < 5.0


def test_mead_filters_and_missing_sentence_map(mead_corpus, tmp_path):
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, mead_corpus["root"], "mead", actors="A2", emotions="neutral",
                             sentence_map=None)
    assert report.ok == 2 and not report.failed
    assert {c.clip_id for c in ws.clips()} == {"A2/neutral/level_1/001", "A2/neutral/level_1/002"}
    assert load_actor(ws, "A2")["meta"]["n_clips"] == 2
    # an empty map: the sentence id falls back to the clip number, with a warning
    empty = tmp_path / "empty.csv"
    empty.write_text("clip,sentence,text\n")
    report = prepare_dataset(Workspace(tmp_path / "ws2"), mead_corpus["root"], "mead", actors="A2",
                             emotions="happy", sentence_map=empty)
    assert any("missing from the sentence map" in w for w in report.warnings)
    assert {c.sentence for c in Workspace(tmp_path / "ws2").clips()} == {"001", "002"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, carphone_mp4, arctic_wav) -> Path:
    """A manifest with the real carphone clip (+ real speech), one good generated clip on its own audio track, a
    corrupt mp4, a faceless clip, a clip whose audio is 1 s longer than its video, and an unknown emotion."""
    d = tmp_path_factory.mktemp("manifest")
    frames, _ = moving_portrait(N_FRAMES)
    _write_clip(d / "good.mp4", frames, sine(N_FRAMES / 25))
    _write_clip(d / "long_audio.mp4", frames)
    from evpcli.media import save_wav

    save_wav(d / "long_audio.wav", sine(N_FRAMES / 25 + 1.0))
    _write_clip(d / "faceless.mp4", moving_square_frames(N_FRAMES, size=(128, 96)), sine(N_FRAMES / 25))
    data = (d / "good.mp4").read_bytes()
    (d / "corrupt.mp4").write_bytes(data[: len(data) // 3])
    rows = [
        [str(carphone_mp4), str(arctic_wav), "carl", "neutral", "1", "s1"],
        ["good.mp4", "", "pat", "happy", "level_2", "s1"],
        ["corrupt.mp4", "", "pat", "happy", "2", "s2"],
        ["faceless.mp4", "", "pat", "sad", "1", "s1"],
        ["long_audio.mp4", "long_audio.wav", "pat", "angry", "3", "s1"],
        ["good.mp4", "", "pat", "bored", "1", "s1"],
    ]
    path = d / "clips.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "audio", "actor", "emotion", "level", "sentence"])
        w.writerows(rows)
    return path


def test_manifest_skips_bad_clips_with_clear_reasons(manifest, tmp_path, capsys):
    ws_dir = tmp_path / "ws"
    rc = main(["--workspace", str(ws_dir), "prepare-dataset", str(manifest), "--layout", "manifest"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "2 of 6 clips ready" in err and "4 clip(s) skipped" in err
    ws = Workspace(ws_dir)
    ok = {c.clip_id: c for c in ws.clips()}
    assert set(ok) == {"carl/neutral/level_1/001", "pat/happy/level_2/001"}
    failed = {c.clip_id: c.message for c in ws.clips(status="failed")}
    assert "corrupt.mp4: corrupt or truncated video" in failed["pat/happy/level_2/002"]
    assert "no face found in 30 of 30 frames" in failed["pat/sad/level_1/001"]
    assert "differ by 1.00 s" in failed["pat/angry/level_3/001"]
    assert "unknown emotion 'bored'" in failed["pat/bored/level_1/001"]
    report = json.loads((ws_dir / REPORT_NAME).read_text())
    assert {f["clip_id"] for f in report["failed"]} == set(failed)
    # the real clip: a face in at least 95 % of its frames, 4 s at 25 fps
    lm = ws.load_clip_feature("landmarks", "carl/neutral/level_1/001")
    assert len(lm["detected"]) == 100 and lm["detected"].mean() >= 0.95
    # ... and its stored smoothed track is steadier on the nose bridge than the raw one, without lagging the mouth
    assert _jitter(lm["landmarks"][:, 27:31]) < 0.6 * _jitter(lm["raw"][:, 27:31])
    assert abs(_lag(lm["raw"][:, 66, 1] - lm["raw"][:, 62, 1], lm["landmarks"][:, 66, 1] - lm["landmarks"][:, 62, 1])) <= 1
    # --strict turns skipped clips into exit 1 (and the re-run is all cached)
    assert main(["-q", "--workspace", str(ws_dir), "prepare-dataset", str(manifest), "--layout", "manifest",
                 "--strict"]) == 1


def test_no_clip_ready_exits_1(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("video,audio,actor,emotion,level,sentence\nmissing.mp4,,x,happy,1,s\n")
    assert main(["-q", "--workspace", str(tmp_path / "ws"), "prepare-dataset", str(csv_path), "--layout",
                 "manifest"]) == 1
    assert main(["-q", "--workspace", str(tmp_path / "ws"), "prepare-dataset", str(tmp_path / "nope"),
                 "--layout", "mead"]) == 1
    bad_cols = tmp_path / "cols.csv"
    bad_cols.write_text("video,actor\na.mp4,x\n")
    assert main(["-q", "--workspace", str(tmp_path / "ws"), "prepare-dataset", str(bad_cols), "--layout",
                 "manifest"]) == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_run_leaves_a_consistent_workspace_and_resumes(mead_corpus, tmp_path, jobs):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(ws, mead_corpus["root"], "mead", actors="A1", emotions="neutral,happy", jobs=jobs,
                        progress=stop_after(1))
    ready = ws.clips()
    assert len(ready) == 1
    for kind in ("mfcc", "landmarks"):
        ws.load_clip_feature(kind, ready[0].clip_id)  # complete files
    assert json.loads((ws.root / REPORT_NAME).read_text())["interrupted"] is True
    report = prepare_dataset(ws, mead_corpus["root"], "mead", actors="A1", emotions="neutral,happy")
    # with 2 workers a second clip may have finished its files before the interrupt: found, not recomputed
    assert report.cached >= 1 and report.cached + report.prepared == 4 and not report.failed
    if jobs == 1:
        assert report.cached == 1
    # files written but the index lost (killed between the two): found again without recomputing
    ws.close()
    ws.index_path.unlink()
    for p in ws.root.glob("index.sqlite-*"):
        p.unlink()
    report = prepare_dataset(Workspace(ws.root), mead_corpus["root"], "mead", actors="A1", emotions="neutral,happy")
    assert report.cached == 4 and report.prepared == 0 and report.frames == 0


def test_synthetic_corpus_acceptance(tmp_path):
    """Issue acceptance: on the synthetic corpus (evpcli.corpus.synth) tracked landmarks lie within a mean of 4 px
    of the ground truth (256 px frames), and every clip is indexed with the right actor, emotion, level and
    sentence (from the corpus's sentences.csv)."""
    from evpcli.corpus.synth import synth_corpus
    from evpcli.workspace import load_npz

    root = tmp_path / "corpus"
    synth_corpus(root, actors=2, sentences=1, emotions=("neutral", "happy"), levels=(3,), size=256, seed=0, jobs=1)
    smap = {r["clip"]: r for r in csv.DictReader(open(root / "sentences.csv"))}
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, root, "mead")
    assert report.ok == len(smap) >= 4 and not report.failed and not report.warnings
    clips = {c.clip_id: c for c in ws.clips()}
    assert set(clips) == set(smap)
    errors = []
    for cid, c in clips.items():
        actor, emotion, level, number = cid.split("/")
        assert (c.actor, c.emotion, f"level_{c.level}") == (actor, emotion, level)
        assert (c.sentence, c.text) == (smap[cid]["sentence"], smap[cid]["text"])
        truth = load_npz(root / actor / "groundtruth" / emotion / level / f"{number}.npz")["landmarks"]
        lm = ws.load_clip_feature("landmarks", cid)["landmarks"]
        assert lm.shape == truth.shape
        errors.append(float(np.linalg.norm(lm - truth, axis=-1).mean()))
    assert np.mean(errors) <= 4.0, errors


def _crash_on_one(job):
    """prepare_clip, but the worker dies on one clip. Module-level: a pool pickles it by name (a local function
    cannot be pickled, and would fail every clip without any worker dying)."""
    import os

    from evpcli.prepare import _compute_clip

    if job["clip_id"].endswith("neutral/level_1/002"):
        os._exit(3)  # a crash in native code, as a worker would see it
    return _compute_clip(job)


def test_a_dying_worker_fails_only_clips_and_a_rerun_retries_them(mead_corpus, tmp_path, monkeypatch):
    import evpcli.prepare as prep

    real = prep.prepare_clip
    monkeypatch.setattr(prep, "prepare_clip", _crash_on_one)
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, mead_corpus["root"], "mead", actors="A2", jobs=2)
    died = [f for f in report.failed if "worker process died" in f["reason"]]
    assert died and report.ok + len(died) == 4
    monkeypatch.setattr(prep, "prepare_clip", real)
    again = prepare_dataset(ws, mead_corpus["root"], "mead", actors="A2", jobs=1)
    assert again.ok == 4 and not again.failed and again.prepared == len(died)


def test_a_clip_with_silent_audio_is_prepared_with_a_warning(tmp_path):
    """Issue 24: a clip whose audio is silent was accepted without a word."""
    frames, _ = moving_portrait(N_FRAMES)
    _write_clip(tmp_path / "quiet.mp4", frames, np.zeros(int(N_FRAMES / 25 * 16000), np.float32))
    _write_clip(tmp_path / "loud.mp4", frames, sine(N_FRAMES / 25))
    path = tmp_path / "clips.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "audio", "actor", "emotion", "level", "sentence"])
        w.writerows([["quiet.mp4", "", "pat", "happy", "1", "s1"], ["loud.mp4", "", "pat", "sad", "1", "s1"]])
    report = prepare_dataset(Workspace(tmp_path / "ws"), path, layout="manifest")
    silent = [w for w in report.warnings if "silent audio" in w]
    assert len(silent) == 1 and "1 clip(s)" in silent[0] and "pat/happy" in silent[0]


def test_a_full_disk_fails_clips_for_now_and_the_next_run_retries_them(tmp_path, monkeypatch):
    """Issue 24: clips that hit a full disk stayed failed after space was freed ('81 of 84 ready')."""
    import errno

    from evpcli import prepare as prep

    frames, _ = moving_portrait(N_FRAMES)
    for name in ("a", "b"):
        _write_clip(tmp_path / f"{name}.mp4", frames, sine(N_FRAMES / 25))
    path = tmp_path / "clips.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "audio", "actor", "emotion", "level", "sentence"])
        w.writerows([["a.mp4", "", "pat", "happy", "1", "s1"], ["b.mp4", "", "pat", "sad", "1", "s1"]])
    real = prep.save_npz

    def full(p, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(p))

    monkeypatch.setattr(prep, "save_npz", full)
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, path, layout="manifest")
    assert len(report.failed) == 2
    assert all("re-run retries it" in f["reason"] for f in report.failed)
    monkeypatch.setattr(prep, "save_npz", real)  # space freed
    report = prepare_dataset(ws, path, layout="manifest")
    assert not report.failed and len(ws.clips()) == 2
