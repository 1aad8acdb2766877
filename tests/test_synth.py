"""The synthetic corpus: speech prosody, face geometry, ground truth, files and the command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from evpcli.audio import frame_rms
from evpcli.cli import main
from evpcli.config import EMOTIONS
from evpcli.corpus import synth
from evpcli.corpus.espeak import synthesize
from evpcli.errors import EvpError
from evpcli.face.au import AU_MEASURES, au_measures
from evpcli.face.landmarks import dlib_models
from evpcli.face.shape3d import generic_mean_shape
from evpcli.media import load_audio, probe, read_video

GT_KEYS = {"landmarks", "rotation", "euler_deg", "scale", "translation", "shape3d", "shape3d_frames", "mouth_open",
           "blink", "expression_weight", "phoneme_start_s", "phoneme_end_s", "phoneme_labels", "fps", "size",
           "actor", "emotion", "level", "sentence", "text"}


@pytest.fixture(scope="module")
def happy_clip() -> synth.SynthClip:
    return synth.make_clip(1, "happy", 3, 2, size=256, seed=0)


# ------------------------------------------------------------------------------------------------ speech


def test_espeak_gives_speech_with_a_phoneme_timeline_and_repeats_exactly():
    a = synthesize("Help the woman get back to her feet.", "en+f2")
    b = synthesize("Help the woman get back to her feet.", "en+f2")
    assert a.sample_rate == 22050 and 1.0 < len(a.wav) / a.sample_rate < 4.0
    assert np.abs(a.wav).max() > 0.05
    starts = [p[0] for p in a.phonemes]
    assert len(a.phonemes) > 15 and starts == sorted(starts)
    assert {"h", "w", "f"} <= {p[2].lstrip("'") for p in a.phonemes}
    np.testing.assert_array_equal(a.wav, b.wav)  # espeak-ng's carried-over state does not leak between calls
    assert a.phonemes == b.phonemes


def _median_f0(wav: np.ndarray) -> float:
    import librosa

    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=16000, frame_length=1024)
    rms = librosa.feature.rms(y=wav, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[rms > 0.3 * rms.max()]))


def _voice_features(speech: synth.Speech) -> np.ndarray:
    """log F0, log duration, log RMS of the voiced part: where an emotion moves the voice."""
    active = speech.wav[np.abs(speech.wav) > 1e-4]
    return np.log([_median_f0(speech.wav), len(speech.wav) / 16000, np.sqrt(np.mean(active ** 2))])


def test_emotions_change_pitch_and_duration_and_level_3_more_than_level_1():
    feats = {(e, k): _voice_features(synth.make_speech(0, e, k, 4))
             for e in EMOTIONS for k in ((1,) if e == "neutral" else (1, 3))}
    f0 = {key: np.exp(v[0]) for key, v in feats.items()}
    dur = {key: np.exp(v[1]) for key, v in feats.items()}
    assert f0[("angry", 3)] > f0[("sad", 3)] * 1.2
    assert f0[("happy", 3)] > f0[("sad", 3)] * 1.2
    durations = [round(dur[(e, 3)], 2) for e in EMOTIONS if e != "neutral"]
    assert len(set(durations)) == len(durations)  # every emotion takes its own time
    assert dur[("sad", 3)] > dur[("neutral", 1)] * 1.3
    neutral = feats[("neutral", 1)]
    for e in EMOTIONS:
        if e != "neutral":
            assert np.linalg.norm(feats[(e, 3)] - neutral) > np.linalg.norm(feats[(e, 1)] - neutral), e


def test_visemes_close_the_lips_for_bilabials_and_open_for_vowels():
    assert synth.viseme("p")[3] and synth.viseme("m")[0] == 0
    assert synth.viseme("'a")[0] > synth.viseme("@")[0] > synth.viseme("s")[0]
    assert synth.viseme("u:")[2] > 0.8 and synth.viseme("i:")[1] > 0.5
    tracks = synth.mouth_tracks([(0.0, 0.4, "_"), (0.4, 0.7, "'aI"), (0.7, 0.8, "m"), (0.8, 1.2, "_")], 30)
    assert tracks.shape == (30, 3)
    assert tracks[:5, 0].max() < 0.05 and tracks[13:16, 0].max() > 0.6  # silence shut, vowel open
    assert tracks[18, 0] < 0.5 * tracks[14, 0]  # the /m/ closes the lips again


# -------------------------------------------------------------------------------------------------- face


def test_rotation_convention_round_trips_and_matches_the_docstring():
    euler = np.array([[12.0, -7.0, 4.0], [-19.0, 15.0, -9.0]])
    r = synth.euler_to_rotation(euler)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(synth.rotation_to_euler(r), euler, atol=1e-9)
    nose = generic_mean_shape()[30]  # nose tip: z < 0, toward the camera
    yawed = synth.euler_to_rotation(np.array([20.0, 0, 0])) @ nose
    pitched = synth.euler_to_rotation(np.array([0, 20.0, 0])) @ nose
    assert yawed[0] < nose[0] - 5 and pitched[1] > nose[1] + 5  # yaw > 0: nose left; pitch > 0: nose down


# Each prototype at full intensity (level 3), in % of the inter-ocular distance (evpcli.face.au): the action units
# it claims move the right way, at the amplitudes real faces show (docs/commands.md, `evp synth-corpus`, "Expressions").
@pytest.mark.parametrize("emotion, ranges", [
    ("happy", {"corner_raise": (8, 14), "mouth_width": (8, 16), "lower_lid_raise": (2.5, 6), "eye_aperture": (-7, -2.5),
               "inner_brow_raise": (-1.5, 1.5)}),  # AU6+12: corners up and back, cheeks push the lower lids up
    ("sad", {"inner_brow_raise": (7, 13), "outer_brow_raise": (-4, 0.5), "brow_gap": (-7, -2),
             "corner_raise": (-12, -6)}),  # AU1+4+15: inner brows up and together, corners down
    ("angry", {"inner_brow_raise": (-12, -6), "brow_gap": (-14, -6), "lower_lid_raise": (1.5, 5),
               "mouth_width": (-9, -2)}),  # AU4+5+7+23: brows down and together, lids tight, lips narrowed
    ("surprised", {"inner_brow_raise": (8, 14), "outer_brow_raise": (7, 14), "eye_aperture": (3, 8),
                   "jaw_drop": (5, 10)}),  # AU1+2+5+26: brows up, eyes wide, jaw dropped
    ("fear", {"inner_brow_raise": (7, 13), "brow_gap": (-8, -3), "eye_aperture": (2, 7),
              "mouth_width": (7, 14)}),  # AU1+2+4+5+20: brows up and together, eyes wide, lips stretched
    ("disgusted", {"upper_lip_raise": (4, 9), "nose_raise": (2.5, 6), "inner_brow_raise": (-8, -3),
                   "lower_lid_raise": (2, 5)}),  # AU9+10+4: nose wrinkled, upper lip raised, brows lowered
    ("contempt", {"corner_asym": (4, 8), "corner_raise": (1, 5)}),  # AU14 on one side
    ("neutral", {k: (0, 0) for k in AU_MEASURES}),
])
def test_expression_prototypes_move_their_action_units_at_real_amplitudes(emotion, ranges):
    for index in (0, 1):  # a mirrored actor too
        shape = synth.make_actor(index).shape3d
        au = au_measures(shape + synth.expression_offsets(emotion, shape), shape)
        for name, (lo, hi) in ranges.items():
            assert lo <= au[name] <= hi, (emotion, index, name, round(float(au[name]), 2))
        assert au["lip_opening"] >= 0  # no prototype presses the inner lips together: speech still opens the mouth


def test_speech_opens_the_mouth_in_every_emotion():
    """The inner-lip opening's swing over a sentence at level 3 stays at least 0.7 of the neutral one (sad and angry
    press no mouth shut) and follows the speech energy."""
    swing = {}
    for emotion in EMOTIONS:
        clip = synth.make_clip(0, emotion, 3 if emotion != "neutral" else 1, 0, size=64)
        opening = clip.gt["mouth_open"]
        swing[emotion] = np.percentile(opening, 95) - np.percentile(opening, 5)
        assert np.corrcoef(opening, np.log(frame_rms(clip.wav, len(opening)) + 1e-5))[0, 1] > 0.5, emotion
    for emotion in EMOTIONS:
        assert swing[emotion] >= 0.7 * swing["neutral"], (emotion, swing)


def test_actors_differ_from_each_other_and_from_the_generic_face():
    def aligned_residual(a: np.ndarray, b: np.ndarray) -> float:
        """RMS distance after the best similarity transform (Procrustes), in units of b's size."""
        a0, b0 = a - a.mean(0), b - b.mean(0)
        a0, b0 = a0 / np.linalg.norm(a0), b0 / np.linalg.norm(b0)
        u, _, vt = np.linalg.svd(a0.T @ b0)
        return float(np.linalg.norm(a0 @ u @ vt - b0))

    generic = generic_mean_shape()
    actors = [synth.make_actor(i) for i in range(3)]
    for actor in actors:
        assert aligned_residual(actor.shape3d, generic) > 0.05
    assert aligned_residual(actors[0].shape3d, actors[2].shape3d) > 0.02
    assert actors[1].mirrored and not actors[0].mirrored
    assert not np.array_equal(actors[0].image, actors[2].image)
    assert [a.name for a in actors] == ["M001", "W002", "M003"]


def test_ground_truth_follows_the_projection_convention(happy_clip):
    gt, n = happy_clip.gt, len(happy_clip.frames)
    assert GT_KEYS <= set(gt)
    assert happy_clip.frames.shape == (n, 256, 256, 3) and len(happy_clip.wav) == n * 640
    assert gt["landmarks"].shape == (n, 68, 2) and gt["rotation"].shape == (n, 3, 3)
    assert gt["shape3d"].shape == (68, 3) and gt["shape3d_frames"].shape == (n, 68, 3)
    projected = gt["scale"][:, None, None] * np.einsum("tij,tkj->tki", gt["rotation"], gt["shape3d_frames"])[..., :2] \
        + gt["translation"][:, None]
    np.testing.assert_allclose(projected, gt["landmarks"], atol=1e-3)
    np.testing.assert_allclose(synth.euler_to_rotation(gt["euler_deg"]), gt["rotation"], atol=1e-5)
    assert np.abs(gt["euler_deg"]).max() <= 20 and np.ptp(gt["euler_deg"][:, 0]) > 2  # the head moves
    gap = gt["shape3d_frames"][:, [67, 66, 65], 1] - gt["shape3d_frames"][:, [61, 62, 63], 1]
    np.testing.assert_allclose(gt["mouth_open"], gap.mean(1), atol=1e-4)
    assert gt["mouth_open"].min() >= 0 and gt["mouth_open"].max() > 8
    assert gt["phoneme_labels"].dtype.kind == "U" and len(gt["phoneme_labels"]) == len(gt["phoneme_start_s"])
    assert np.all(np.diff(gt["phoneme_start_s"]) >= 0) and gt["phoneme_end_s"].max() <= n / 25 + 1e-3
    assert gt["phoneme_start_s"][0] >= synth.LEAD_S - 1e-3
    assert str(gt["text"]) == synth.SENTENCES[2] and int(gt["sentence"]) == 3
    assert gt["blink"].max() > 0.9  # at least one blink


def test_dlib_finds_the_face_and_its_landmarks_sit_on_the_driving_landmarks():
    import dlib

    detector, predictor = dlib_models()
    found = total = 0
    errors = []
    for actor, emotion, level in ((0, "neutral", 1), (1, "surprised", 3), (2, "angry", 3), (3, "sad", 3)):
        clip = synth.make_clip(actor, emotion, level, actor, size=256)
        for t in range(0, len(clip.frames), 3):
            total += 1
            faces = detector(clip.frames[t], 0)
            if not faces:
                continue
            found += 1
            face = max(faces, key=lambda r: r.area())
            shape = predictor(clip.frames[t], dlib.rectangle(face.left(), face.top(), face.right(), face.bottom()))
            lm = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
            errors.append(np.linalg.norm(lm - clip.gt["landmarks"][t], axis=1).mean())
    assert found / total >= 0.99
    assert np.mean(errors) < 4.0


def test_mouth_opening_follows_the_audio_energy():
    rs = []
    for actor, emotion, level, sentence in ((0, "neutral", 1, 0), (1, "happy", 1, 5), (0, "sad", 3, 7),
                                            (1, "angry", 3, 11)):
        clip = synth.make_clip(actor, emotion, level, sentence, size=64)
        energy = frame_rms(clip.wav, len(clip.frames))
        rs.append(np.corrcoef(clip.gt["mouth_open"], energy)[0, 1])
    assert np.mean(rs) > 0.5, rs


def test_open_mouth_is_dark_inside(happy_clip):
    gt = happy_clip.gt
    t = int(np.argmax(gt["mouth_open"]))
    lm = gt["landmarks"][t]
    below_teeth = 0.3 * lm[62] + 0.7 * lm[66]  # the upper teeth show under the upper lip; below them, the dark
    x, y = np.round(below_teeth).astype(int)
    lip = lm[[50, 52]].mean(0).round().astype(int)
    assert happy_clip.frames[t, y, x].mean() < 0.6 * happy_clip.frames[t, lip[1] - 1, lip[0]].mean()


# ------------------------------------------------------------------------------------------------- files


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_layout_sentence_map_and_same_seed_same_bytes(tmp_path):
    kw = dict(actors=1, sentences=2, emotions=("neutral", "fear"), levels=(1, 3), size=96, seed=5)
    summary = synth.synth_corpus(tmp_path / "a", jobs=1, **kw)
    assert summary["clips"] == 6 and summary["generated"] == 6
    root = tmp_path / "a"
    video = root / "M001/video/front/fear/level_3/002.mp4"
    info = probe(video)
    assert info.fps == 25 and info.size == (96, 96) and info.has_audio
    wav = load_audio(root / "M001/audio/fear/level_3/002.wav")
    gt = np.load(root / "M001/groundtruth/fear/level_3/002.npz")
    assert GT_KEYS <= set(gt.files)
    frames = read_video(video).frames
    assert len(frames) == len(gt["landmarks"]) == len(wav) // 640
    assert not (root / "M001/video/front/neutral/level_3").exists()  # neutral has one level
    with open(root / "sentences.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and set(rows[0]) == {"clip", "sentence", "text"}
    by_clip = {r["clip"]: r for r in rows}
    assert by_clip["M001/fear/level_3/002"]["sentence"] == by_clip["M001/neutral/level_1/002"]["sentence"] == "2"
    assert by_clip["M001/fear/level_1/001"]["text"] == synth.SENTENCES[0]
    assert json.loads((root / "corpus.json").read_text())["seed"] == 5

    synth.synth_corpus(tmp_path / "b", jobs=2, **kw)
    assert _tree_bytes(root) == _tree_bytes(tmp_path / "b")  # same seed, same bytes, whatever --jobs

    again = synth.synth_corpus(root, **kw)  # a re-run keeps finished clips
    assert again["kept"] == 6 and again["generated"] == 0
    with pytest.raises(EvpError, match="other parameters"):
        synth.synth_corpus(root, **{**kw, "seed": 6})


def test_corpus_refuses_a_file_or_a_foreign_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EvpError, match="is a file"):
        synth.synth_corpus(tmp_path / "file", actors=1, sentences=1, emotions=("sad",), size=64)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(EvpError, match="not empty"):
        synth.synth_corpus(tmp_path / "other", actors=1, sentences=1, emotions=("sad",), size=64)


def test_other_seed_other_corpus():
    a = synth.make_clip(0, "fear", 1, 0, size=64, seed=0)
    b = synth.make_clip(0, "fear", 1, 0, size=64, seed=1)
    assert not np.allclose(a.gt["euler_deg"], b.gt["euler_deg"])


def test_command_writes_a_corpus_and_a_contact_sheet(tmp_path, capsys):
    out, sheet = tmp_path / "corpus", tmp_path / "sheet.png"
    rc = main(["-q", "synth-corpus", str(out), "--actors", "1", "--sentences", "1", "--emotions", "sad,happy",
               "--levels", "3", "--size", "64", "--preview", str(sheet), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 2 and summary["preview"] == str(sheet)
    assert (out / "M001/video/front/sad/level_3/001.mp4").exists()
    import cv2

    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] > 64 and img.shape[1] > 2 * 64


@pytest.mark.parametrize("args, message", [
    (["--emotions", "joyful"], "unknown emotion"),
    (["--levels", "4"], "--levels"),
    (["--levels", "x"], "--levels"),
    (["--sentences", "99"], "--sentences"),
])
def test_command_rejects_bad_options_in_one_line(tmp_path, capsys, args, message):
    assert main(["synth-corpus", str(tmp_path / "c"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
