"""The target's own expression read from its landmarks (face.expression) and the commanded face drawn relative to
the tracked one (render.drive.follow_tracked)."""

import numpy as np
import pytest

from evpcli.corpus.synth.expressions import expression_offsets
from evpcli.face.expression import MIN_COEFFICIENT, MIN_SMILE, estimate_expression, neutral_reference
from evpcli.face.normalize import normalise


def _canonical(shape3d: np.ndarray) -> np.ndarray:
    return normalise(np.asarray(shape3d, np.float32)[None, :, :2])[0][0]


@pytest.fixture(scope="module")
def actors():
    from evpcli.corpus.synth.actors import make_actor

    return [make_actor(i).shape3d for i in range(4)]


def test_neutral_actors_read_neutral(actors):
    for shape in actors:
        reading = estimate_expression(_canonical(shape))
        assert reading.strongest == ("neutral", 0.0), reading.describe()
        assert np.abs(reading.displacement).max() == 0.0


@pytest.mark.parametrize("emotion", ["happy", "sad", "angry", "surprised", "contempt"])
def test_prototype_reads_as_its_emotion(actors, emotion):
    for shape in actors:
        face = shape + expression_offsets(emotion, shape)
        reading = estimate_expression(_canonical(face))
        name, value = reading.strongest
        assert name == emotion and 0.5 <= value <= 1.5, reading.describe()


@pytest.mark.parametrize("emotion", ["fear", "happy", "sad", "surprised"])
def test_neutral_reference_takes_most_of_the_expression_away(actors, emotion):
    shape = actors[1]
    neutral = _canonical(shape)
    face = _canonical(shape + expression_offsets(emotion, shape))
    estimate, _ = neutral_reference(face)
    # what is left of the expression after the estimate, against the expression itself (outside the jaw line,
    # which the similarity normalisation spreads)
    pts = np.arange(17, 68)
    before = np.linalg.norm(face[pts] - neutral[pts])
    after = np.linalg.norm(estimate[pts] - neutral[pts])
    assert after < 0.75 * before, (emotion, before, after)  # fear is partly read as surprise (brows, eyes)


def test_a_weaker_smile_is_still_a_smile(actors):
    """A smile at 0.4 of the prototype (what the held-out smiler's grin read under its lowered, turned head) is kept
    (the smile's own floor, MIN_SMILE), where every other expression that weak is the face's own shape."""
    assert MIN_SMILE < 0.4 < MIN_COEFFICIENT
    for shape in actors:
        reading = estimate_expression(_canonical(shape + 0.4 * expression_offsets("happy", shape)))
        assert 0.3 <= reading.coefficients["happy"] <= 0.5, reading.describe()
        weak_sad = estimate_expression(_canonical(shape + 0.4 * expression_offsets("sad", shape)))
        assert weak_sad.coefficients["sad"] == 0.0, weak_sad.describe()


def test_a_faint_smile_is_a_smile(actors):
    """A faint closed-mouth smile (0.2 of the prototype; the bearded man of benchmarks/real_faces.py reads 0.18)
    reads as one on every actor; their neutral faces do not (test_neutral_actors_read_neutral: happy <= 0.105 on 24
    of them)."""
    for shape in actors:
        reading = estimate_expression(_canonical(shape + 0.2 * expression_offsets("happy", shape)))
        assert MIN_SMILE <= reading.coefficients["happy"] <= 0.35, reading.describe()


def test_the_astronaut_smiles():
    """A real smiling face (skimage's astronaut, dlib's landmarks) reads happy."""
    pytest.importorskip("dlib")
    from evpcli.corpus.synth.actors import astronaut_landmarks

    reading = estimate_expression(normalise(np.asarray(astronaut_landmarks(), np.float32)[None])[0][0])
    name, value = reading.strongest
    assert name == "happy" and value >= MIN_COEFFICIENT, reading.describe()


def test_follow_tracked_draws_nothing_where_nothing_is_commanded():
    from evpcli.render.drive import follow_tracked

    rng = np.random.default_rng(0)
    from evpcli.face.normalize import TEMPLATE

    n = 30
    base = np.repeat(np.asarray(TEMPLATE, np.float64)[None], n, 0)
    # the 3D alignment's neutral face: the tracked face off by a small similarity that changes every frame
    tracked = base + rng.normal(0, 0.3, base.shape)
    ang = rng.normal(0, 0.01, n)
    rot = np.stack([np.stack([np.cos(ang), -np.sin(ang)], 1), np.stack([np.sin(ang), np.cos(ang)], 1)], 1)
    c = base.mean(1, keepdims=True)
    neutral = np.einsum("tij,tnj->tni", rot, base - c) * 1.01 + c + rng.normal(0, 0.5, (n, 1, 2))
    command = np.zeros_like(base)
    command[:, 48:68, 1] += 3.0  # the mouth moves: the speech
    out = follow_tracked(neutral + command, neutral, tracked, still=False)
    upper = np.r_[17:48]
    # what is left is the slow part of the tracked face's own noise (its 1 s average; the clip's ends average less)
    assert np.median(np.abs(out[:, upper] - tracked[:, upper])) < 0.1
    assert np.abs(out[:, upper] - tracked[:, upper]).max() < 0.6
    # the mouth is the command's, placed on the tracked face: 3 px below the neutral face's mouth
    assert np.allclose((out[:, 48:68, 1] - tracked[:, 48:68, 1]).mean(), 3.0, atol=0.3)
    # a still target: its lasting expression is replaced by the command; the upper face does not move at all
    from evpcli.face.normalize import STABLE_POINTS, apply_transform, similarity_fit

    nt, tt = neutral[:1].repeat(n, 0), tracked[:1].repeat(n, 0)
    still = follow_tracked(nt + command, nt, tt, still=True)
    placed = apply_transform(nt[0], similarity_fit(nt[0, list(STABLE_POINTS)], tt[0, list(STABLE_POINTS)]))
    assert np.allclose(still[:, upper], placed[upper], atol=1e-4)  # the neutral face, on the tracked one
    assert np.abs(still[:, upper] - tt[:, upper]).max() > 0.3


def test_jaw_line_stays_on_the_tracked_outline_and_follows_the_opening():
    from evpcli.face.normalize import TEMPLATE
    from evpcli.render.drive import follow_tracked

    n = 5
    tracked = np.repeat(np.asarray(TEMPLATE, np.float64)[None], n, 0)
    neutral = tracked.copy()
    neutral[:, 0:17, 0] += np.linspace(-2, 2, 17)  # the 3D model's outline: 2 px off the tracked one
    command = np.zeros_like(tracked)
    command[:, [55, 56, 57, 58, 59, 65, 66, 67], 1] += 6.0  # the lower lip drops: the jaw opens
    out = follow_tracked(neutral + command, neutral, tracked, still=True)
    assert np.allclose(out[:, [0, 1, 15, 16]], tracked[:, [0, 1, 15, 16]], atol=0.05)  # by the ears: the outline
    assert 5.0 < (out[:, 8, 1] - tracked[:, 8, 1]).mean() < 6.5  # the chin goes down with the lower lip
    assert np.allclose(out[:, 8, 0], tracked[:, 8, 0], atol=0.3)


def test_the_warp_ends_where_the_face_ends():
    """A jaw dropped by 0.15 IOD moves the skin under the chin, not the neck and collar 0.7 IOD below it."""
    from evpcli.face.normalize import TEMPLATE
    from evpcli.engines.geometry import crop_box, frame_points, make_rig, pwa_maps, triangles_for

    lm = np.asarray(TEMPLATE, np.float64) * 2.0 + 100.0
    iod = np.linalg.norm(lm[45] - lm[36])
    adapted = lm.copy()
    drop = 0.15 * iod
    adapted[np.r_[5:12, 55:60, 65:68], 1] += drop
    rig = make_rig()
    src, dst, _ = frame_points(rig, lm, adapted)
    box = crop_box(np.concatenate([src[-rig.n_ring:], src[:68], dst[:68]]), (800, 800), 128)
    mx, my = pwa_maps(box, src, dst, triangles_for(rig, src))

    def moved(y_below_chin: float) -> float:
        x, y = int(round(lm[8, 0] - box.x0)), int(round(lm[8, 1] + y_below_chin - box.y0))
        return float(np.hypot(mx[y, x] - x, my[y, x] - y))

    assert moved(0.05 * iod) > 0.5 * drop  # the skin just under the chin goes with it
    assert moved(0.7 * iod) < 0.12 * drop  # the neck does not
