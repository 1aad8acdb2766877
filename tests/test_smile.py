"""A smiling target's own smile undone in the texture where the command takes it away (issue 23): the grin's teeth
in an opened mouth (engines.smile.interior_without_grin) and the smile's folds (engines.smile.soften_folds), by the
share of the smile the command removes (render.drive.smile_removed)."""

import cv2
import numpy as np
import pytest

from evpcli.engines.warp import WarpRenderer, build_mouth_bank
from tests.renderdata import open_mouth


@pytest.fixture(scope="module")
def grin():
    """The astronaut photo (a broad smile, her upper and lower teeth showing), her landmarks and her one-entry mouth
    bank: the grin is all a still can show in an opened mouth."""
    from skimage import data

    from evpcli.corpus.synth.actors import astronaut_landmarks

    image = data.astronaut()
    lm = astronaut_landmarks()
    return image, lm, build_mouth_bank([image], lm[None], None)


def _interior(out: np.ndarray, command: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels (N, 3) float inside the commanded inner lip (1 px in) and their rows (N,)."""
    from evpcli.engines.mouth import INNER, _polygon_mask, closed_spline

    inside = cv2.erode((_polygon_mask(out.shape[:2], closed_spline(command[INNER])) > 127).astype(np.uint8),
                       np.ones((3, 3), np.uint8)) > 0
    ys, _ = np.nonzero(inside)
    return out[inside].astype(float), ys.astype(float)


def test_an_opened_mouth_without_the_smile_shows_a_relaxed_mouth_not_the_grin(grin):
    image, lm, bank = grin
    command = open_mouth(lm, 10)  # speech opens her mouth; the interior comes from her grin
    seen = {}
    for removed in (0.0, 1.0):
        r = WarpRenderer(bank, smile_removed=removed)
        seen[removed] = _interior(r.render(image, lm, command, 1.0), command)
    grin_px, _ = seen[0.0]
    px, rows = seen[1.0]
    # teeth: bright and nearly white (the lips and the cavity are darker, the tongue's lit back is red)
    white = lambda p: (p.mean(1) > 150) & (p[:, 0] < 1.25 * p[:, 2])  # noqa: E731
    teeth = lambda p: float(white(p).mean())  # noqa: E731
    assert teeth(grin_px) > 0.45  # the smile kept (a happy command): the grin's teeth fill the opening
    assert 0.03 < teeth(px) < 0.5 * teeth(grin_px)  # without it: a band of upper teeth, much less of them
    assert rows[white(px)].mean() < rows.mean()  # the teeth hang from the upper lip
    dark = px[px.mean(1) < np.quantile(px.mean(1), 0.4)]
    assert dark.mean() < 80 and dark[:, 0].mean() > 1.3 * dark[:, 2].mean()  # a dark red cavity, not grey
    # a partial removal lies in between
    r = WarpRenderer(bank, smile_removed=0.5)
    half, _ = _interior(r.render(image, lm, command, 1.0), command)
    assert teeth(px) < teeth(half) < teeth(grin_px)


def test_a_wide_opening_without_the_smile_has_a_tongue_below_a_dark_cavity(grin):
    """The undone grin's cavity is the drawn interior's (engines.interior.drawn_cavity): darkest in the middle, the
    tongue's lit red back low in the opening, not one flat maroon."""
    from evpcli.engines.mouth import INNER

    image, lm, bank = grin
    command = open_mouth(lm, 25)
    out = WarpRenderer(bank, smile_removed=1.0).render(image, lm, command, 1.0).astype(float)
    inner = command[INNER]
    x = int(round(inner[[2, 6], 0].mean()))
    top, bottom = inner[2, 1], inner[6, 1]
    gap = bottom - top

    def at(f):
        y = int(round(top + f * gap))
        return out[y - 1:y + 2, x - 2:x + 3].reshape(-1, 3).mean(0)

    # the deep inside: the darkest of the middle between the teeth and the tongue (whose soft top edge reaches
    # halfway down)
    deep, tongue = min((at(f) for f in np.arange(0.2, 0.7, 0.02)), key=lambda c: c.mean()), at(0.88)
    assert deep.mean() < 40  # the deep inside in shadow
    assert tongue[0] > 3 * deep[0] and tongue[0] > tongue[2] + 40  # the tongue lit, and red (was 2x: a flat maroon)


def test_the_grins_teeth_outside_the_tracked_inner_lip_are_painted_over_when_the_smile_goes(grin):
    """A command opening the mouth as wide as the grin keeps the frame for the warp, but when the smile is taken away
    the interior is redrawn only inside the commanded inner lip: what the tracker leaves of the grin outside its inner
    lip (teeth, their glint) was warped onto the lower lip as white specks at the cavity's edge; it is painted over
    with the lips."""
    from evpcli.config import RenderConfig
    from evpcli.engines.mouth import MouthFiller, _polygon_mask
    from evpcli.face.landmarks import detect_landmarks

    image = grin[0]
    lm = detect_landmarks(image).astype(np.float64)  # the tracker's inner lip, as a render sees it
    bank = build_mouth_bank([image], lm[None], None)
    command = open_mouth(lm, 14)
    keep = MouthFiller(bank, RenderConfig())
    assert keep.prepare_source(image, lm, command, np.zeros(2)) is image  # the smile kept: the frame itself
    out = WarpRenderer(bank, smile_removed=1.0).render(image, lm, command, 1.0)
    light = cv2.cvtColor(out, cv2.COLOR_RGB2LAB)[..., 0].astype(float)
    lower = command[[60, 67, 66, 65, 64]]
    strip = _polygon_mask(out.shape[:2], np.concatenate([lower + [0, 1], (lower + [0, 4])[::-1]])) > 127
    assert np.percentile(light[strip], 99) < 215  # no tooth-white below the cavity (was 229; the lips ~170-205)


def test_the_plan_gives_each_frame_its_share_of_the_smile_removed(grin):
    image, lm, bank = grin
    tracked = np.repeat(lm[None], 3, 0)
    adapted = np.repeat(open_mouth(lm, 10)[None], 3, 0)
    r = WarpRenderer(bank)
    r.plan(tracked, adapted, np.array([0.0, 1.0, 0.0]))
    outs = [r.render(image, tracked[i], adapted[i], 1.0) for i in range(3)]
    assert np.array_equal(outs[0], outs[2])
    assert not np.array_equal(outs[0], outs[1])
    plain = WarpRenderer(bank)
    plain.plan(tracked, adapted)
    assert np.array_equal(plain.render(image, tracked[0], adapted[0], 1.0), outs[0])  # 0: as without the step


def test_the_folds_soften_but_the_skin_keeps_its_grain_and_the_rest_is_untouched(grin):
    from evpcli.engines.mouth import noise_sigma
    from evpcli.engines.smile import COARSE_IOD, _cheek_mask, soften_folds

    image, lm, _ = grin
    out = image.copy()
    soften_folds(out, lm, 1.0)
    iod = float(np.linalg.norm(lm[45] - lm[36]))
    mask = _cheek_mask(image.shape[:2], lm, iod)
    assert np.array_equal(out[mask <= 1e-3], image[mask <= 1e-3])
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32)  # noqa: E731
    core = mask > 0.5

    def folds(im: np.ndarray) -> float:  # the shading between the grain and the coarse scale: the folds, the cheeks
        g = grey(im)
        return float((cv2.GaussianBlur(g, (0, 0), 2.0) - cv2.GaussianBlur(g, (0, 0), COARSE_IOD * iod))[core].std())

    assert folds(out) < 0.6 * folds(image)  # (the mask is feathered: 0.5-0.9 over this core)
    ys, xs = np.nonzero(core)
    box = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
    assert 0.75 < noise_sigma(grey(out)[box]) / noise_sigma(grey(image)[box]) < 1.25  # not smoothed
    again = image.copy()
    soften_folds(again, lm, 0.0)
    assert np.array_equal(again, image)
    half = image.copy()
    soften_folds(half, lm, 0.5)
    assert folds(out) < folds(half) < folds(image)


def test_the_share_removed_follows_the_targets_smile_and_the_commands():
    from evpcli.face.amplitude import prototypes
    from evpcli.face.normalize import TEMPLATE
    from evpcli.render.drive import smile_removed

    names, protos = prototypes()
    p = {n: protos[names.index(n)] for n in ("happy", "sad", "angry")}
    template = np.asarray(TEMPLATE, np.float64)
    smiling = template + 0.9 * p["happy"]
    t = np.arange(50)
    speech = np.zeros((50, 68, 2))
    speech[:, [65, 66, 67, 55, 56, 57, 58, 59], 1] = 6.0 * np.abs(np.sin(t / 3.0))[:, None]
    for emotion, gain, low, high in (("sad", 1.2, 0.95, 1.0), ("angry", 0.9, 0.95, 1.0), ("happy", 1.2, 0.0, 0.05)):
        frontal = template[None] + gain * p[emotion][None] + speech
        share = smile_removed(smiling, frontal)
        assert share.shape == (50,) and low <= share.min() and share.max() <= high, (emotion, share)
    neutral_command = template[None] + speech
    assert smile_removed(smiling, neutral_command).min() >= 0.95
    half = template[None] + 0.5 * p["happy"][None] + speech  # a weaker smile than hers: a part of it removed
    assert 0.2 < float(np.median(smile_removed(smiling, half))) < 0.8
    assert not smile_removed(template, template[None] + p["sad"][None] + speech).any()  # no smile, nothing to undo


def test_a_faint_smile_is_undone_in_shape_only():
    """A faint closed-mouth smile (0.2 of the prototype; the bearded man of benchmarks/real_faces.py reads 0.18) is
    taken from the reference the network reads, but its texture is not softened: it has no grin's teeth or folds,
    and the softening would take a moustache with it (render.drive.TEXTURE_SMILE)."""
    from evpcli.face.amplitude import prototypes
    from evpcli.face.expression import MIN_SMILE, neutral_reference
    from evpcli.face.normalize import TEMPLATE
    from evpcli.render.drive import TEXTURE_SMILE, smile_removed

    names, protos = prototypes()
    template = np.asarray(TEMPLATE, np.float64)
    faint = template + 0.2 * protos[names.index("happy")]
    neutral, reading = neutral_reference(faint)
    assert MIN_SMILE <= reading.coefficients["happy"] < TEXTURE_SMILE, reading.describe()
    assert np.abs(neutral - template).max() < 0.5 * np.abs(faint - template).max()  # its shape is taken away
    sad = template[None] + protos[names.index("sad")][None] + np.zeros((20, 1, 1))
    assert not smile_removed(faint, sad).any()  # its texture is not
    broad = template + 0.5 * protos[names.index("happy")]
    assert smile_removed(broad, sad).min() >= 0.95  # a broader one's is


def test_render_undoes_a_smiling_photos_grin_for_sad_and_keeps_it_for_happy(tmp_path, arctic_wav):
    """Through the pipeline (shipped models): the astronaut rendered sad shows few teeth where speech opens her mouth,
    rendered happy her grin's (before, both showed the grin: the judge read her sad render happy 0.95)."""
    import soundfile as sf
    from skimage import data

    from evpcli import media
    from evpcli.engines.mouth import opening_ratio
    from evpcli.render.pipeline import render
    from evpcli.workspace import Workspace

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    speech = tmp_path / "s.wav"
    sf.write(speech, media.load_audio(arctic_wav)[:32000], 16000)
    ws = Workspace(tmp_path / "ws")
    teeth = {}
    for emotion in ("sad", "happy"):
        out, lm = tmp_path / f"{emotion}.mp4", tmp_path / f"{emotion}.npz"
        render(ws, speech, photo, out, emotion=emotion, landmarks_out=lm)
        adapted = np.load(lm)["adapted"].astype(np.float64)
        frames = list(media.iter_frames(out, 25.0))
        opened = [i for i in range(min(len(frames), len(adapted))) if opening_ratio(adapted[i]) > 0.15]
        assert len(opened) >= 5
        teeth[emotion] = np.mean([float((_interior(frames[i], adapted[i])[0].mean(1) > 150).mean()) for i in opened])
    assert teeth["happy"] > 0.35
    assert teeth["sad"] < 0.5 * teeth["happy"]


def test_a_creases_remnant_in_the_grain_is_taken_out_but_not_the_grain(grin, monkeypatch):
    """A crease within the grain's own level (what clipping the fine detail keeps of a smile's fold: a faint line a
    viewer still follows, from the nose's wing to the mouth's corner where a narrower command puts the grin's fold)
    fades; the grain around it stays."""
    from evpcli.engines import smile
    from evpcli.engines.mouth import noise_sigma

    _, lm, _ = grin
    rng = np.random.default_rng(0)
    skin = np.full((512, 512, 3), (200.0, 150.0, 130.0), np.float32) + rng.normal(0, 3.0, (512, 512, 1))
    a, b = lm[31], lm[48]  # the right side's wing and corner
    along = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-along[1], along[0]])
    line = np.zeros((512, 512), np.uint8)
    cv2.line(line, tuple(np.round(a + 0.15 * (b - a)).astype(int)), tuple(np.round(a + 0.85 * (b - a)).astype(int)),
             1, 2)
    creased = np.clip(skin - 6.0 * line[..., None], 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(line)

    def contrast(im: np.ndarray) -> float:
        g = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32)
        side = [np.round(np.stack([xs, ys], 1) + k * 4 * normal).astype(int) for k in (-1, 1)]
        return float(np.mean([g[p[:, 1], p[:, 0]] for p in side]) - g[ys, xs].mean())

    def softened(line_iod: float) -> np.ndarray:
        monkeypatch.setattr(smile, "LINE_IOD", line_iod)
        out = creased.copy()
        smile.soften_folds(out, lm, 1.0)
        return out

    default = smile.LINE_IOD
    kept, taken = softened(0.0), softened(default)
    assert contrast(creased) > 3.0 and contrast(kept) > 2.0  # clipping the fine detail kept most of it
    assert contrast(taken) < 0.7 * contrast(kept), (contrast(kept), contrast(taken))
    box = (slice(int(a[1]) - 30, int(a[1]) + 10), slice(int(a[0]) - 40, int(a[0])))  # the cheek beside it
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32)[box]  # noqa: E731
    assert noise_sigma(grey(taken)) > 0.8 * noise_sigma(grey(kept))  # the grain stays
