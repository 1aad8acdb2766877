"""The render stage's landmark mathematics: from the network's frontal landmarks to the landmarks each target frame
is drawn with (EVP's 3D-aware keypoint alignment, section 3.3): the target's neutral face posed like each frame,
the commanded displacement posed the same way and compensated for what the tracker reads short, drawn relative to
the tracked face (the target's fast motion kept), and a photo's head moved (``head_motion_pose``).
"""

from __future__ import annotations

import numpy as np

from evpcli.config import FPS, SilenceGate
from evpcli.face.parts import JAW, LOWER_INNER_LIP, MOUTH, STABLE, UPPER_INNER_LIP
from evpcli.face.amplitude import lasting
from evpcli.face.brows import keep_brow_gap
from evpcli.face.lips import keep_lip_thickness
from evpcli.face.landmarks import TRACKER_GAIN
from evpcli.render.targets import TargetData






def _keep_tracked() -> np.ndarray:
    """(68,) 1 where a commanded landmark keeps the target frame's fast motion (:func:`follow_tracked`): the brows,
    the eyes and the nose."""
    from evpcli.face.parts import BROWS, EYES, NOSE_BASE, NOSE_BRIDGE

    fast = np.zeros(68, np.float64)
    fast[np.concatenate([BROWS, EYES, NOSE_BRIDGE, NOSE_BASE])] = 1.0
    return fast


def _jaw_follow() -> np.ndarray:
    """(17,) how much of the lower lip's commanded motion each jaw-line point takes: 1 at the chin, falling to 0 by
    the ears (the jaw turns about its hinge), from the canonical face."""
    from evpcli.face.normalize import TEMPLATE
    from evpcli.face.parts import JAW

    y = np.asarray(TEMPLATE, np.float64)[JAW, 1]
    return np.clip((y - y[2]) / (y[8] - y[2]), 0.0, 1.0) ** 0.7


KEEP_FAST = _keep_tracked()


JAW_FOLLOW = _jaw_follow()


def head_motion_pose(fit, n: int, fps: float, seed: int = 0):
    """A still image's pose made to move gently for ``n`` frames: yaw, pitch and roll as sums of slow sinusoids
    (amplitudes about 5°, 3.5° and 2°, periods 2.5-7 s) around the image's own pose, and a sway of the head in the
    image (about 2 % and 1.2 % of the face width). Returns a PoseFit of n frames."""
    import dataclasses

    from evpcli.face.pose import rotation_from_euler

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    angles = np.zeros((n, 3))
    for axis, amp in enumerate((3.0, 2.5, 2.5)):
        for period in rng.uniform(2.5, 7.0, 2):
            angles[:, axis] += amp / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    euler = np.asarray(fit.euler_deg[:1], np.float64) + angles
    rot = rotation_from_euler(euler)
    rep = {f.name: np.repeat(np.asarray(getattr(fit, f.name))[:1], n, axis=0)
           for f in dataclasses.fields(fit) if isinstance(getattr(fit, f.name), np.ndarray)
           and getattr(fit, f.name).shape[:1] == (fit.n_frames,)}
    rep["rotation"] = rot
    rep["euler_deg"] = euler
    # and a gentle sway of the whole head in the image (about 2 % of the face width sideways, 1.2 % up and down):
    # a head that only turns about a fixed point looks pinned
    lm = np.asarray(fit.landmarks, np.float64)[0]
    face_w = float(np.linalg.norm(lm[16] - lm[0]))
    sway = np.zeros((n, 2))
    for axis, amp in enumerate((0.035 * face_w, 0.02 * face_w)):
        for period in rng.uniform(3.0, 7.0, 2):
            sway[:, axis] += amp / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    if "translation" in rep:
        rep["translation"] = rep["translation"] + sway
    return dataclasses.replace(fit, **rep)


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of a per-frame sequence (T, ...) at 25 fps to n frames over the same duration."""
    t = len(x)
    if n == t:
        return x
    src = np.arange(t) / FPS
    dst = np.arange(n) * (t / FPS) / n
    flat = x.reshape(t, -1)
    out = np.stack([np.interp(dst, src, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(n, *x.shape[1:]).astype(x.dtype)


def drive(model, td: TargetData, windows: np.ndarray, rms: np.ndarray, code: np.ndarray, fps: float = FPS,
          head_motion: bool = False, gate: SilenceGate | None = SilenceGate(), activity: np.ndarray | None = None,
          content: np.ndarray | None = None, tracker_gain: float = TRACKER_GAIN, speech_floor: bool = True,
          real_amplitude: bool = True):
    """Speech windows (T, 28, 12) + emotion code -> what the renderer needs, n output frames at ``fps``:
    frontal landmarks (n, 68, 2) (canonical frame, the target's identity), adapted landmarks (n, 68, 2) and tracked
    landmarks (n, 68, 2) in target pixels, the target frame of each output frame (n,), its reliability (n,).
    ``content``: the windows' content codes if computed beforehand (:func:`evpcli.infer.content_codes`).
    ``speech_floor``: open the mouth at least as far as the neutral command would (:mod:`evpcli.face.speech`);
    ``real_amplitude``: the emotion's lasting expression at real amplitudes (:mod:`evpcli.face.amplitude`), else the
    network's own."""
    from evpcli.face.pose import align_to_target, frame_schedule
    from evpcli.infer import apply_silence_gate, expressive_landmarks, predict_landmarks

    from evpcli.face.expression import neutral_reference
    from evpcli.face.speech import speaking_reference

    # the network reads the target's neutral face (its own expression taken away: face.expression)
    reference, reading = neutral_reference(td.reference)
    expression = reading.displacement
    # ... as a speaking face (face.speech.speaking_reference: the network's references are the mean of speaking
    # frames, mouth half open; a photo's closed mouth read as one put every closing of the speech past the lips).
    # The network's prediction is then drawn relative to the target's own face, so its mouth opens absolutely
    speaking = speaking_reference(reference)
    # the neutral code's prediction for the same speech (ungated), made once: the amplitude and the speech floor
    # both measure against it
    neutral_code = (getattr(model, "emotion_means", None) or {}).get("neutral")
    plain = None
    if neutral_code is not None and (speech_floor or real_amplitude) and not np.allclose(code, neutral_code):
        plain = predict_landmarks(model, windows, neutral_code, speaking, None, None, None, content)
    # the emotion's lasting expression at real amplitudes (face.amplitude): (T, 68, 2), 25 fps
    if real_amplitude:
        frontal = expressive_landmarks(model, windows, code, speaking, rms, gate, activity, content, neutral=plain)
    else:
        frontal = predict_landmarks(model, windows, code, speaking, rms, gate, activity, content)
    if speech_floor and plain is not None:
        # speech readable in every emotion: the mouth opens at least as far as the neutral command's (face.speech)
        from evpcli.face.speech import keep_speech_opening

        gated = plain if rms is None or gate is None else apply_silence_gate(plain, speaking, rms, gate, activity)
        frontal = keep_speech_opening(frontal, np.asarray(gated, np.float32))
    n_out = max(1, int(round(len(frontal) * fps / FPS)))
    frontal = _resample(frontal, n_out)
    fit = td.fit
    if td.still:
        schedule = np.zeros(n_out, np.int64)
        pose = head_motion_pose(fit, n_out, fps) if head_motion else None
    else:
        schedule = frame_schedule(n_out, td.n_frames)
        pose = None
    posed = pose if pose is not None else fit
    frames = np.arange(n_out) if pose is not None else schedule
    # 3D-aware alignment: the target's own neutral face (the reference) is lifted to 3D and posed like each
    # scheduled frame (face.pose.align_to_target), and the prediction's displacement from that neutral face is posed
    # the same way (scaled to the frame's face size, turned by its rotation). Lifting each prediction to 3D on its
    # own would hand a whole clip's emotion (a constant brow raise) to the identity basis, which the target's
    # identity then replaces: measured, the landmark emotion accuracy after alignment fell to chance (12 %); this
    # way it stays at the frontal prediction's (75 % on 16 held-out synthetic clips).
    uniq, inverse = np.unique(frames, return_inverse=True)
    scale = td.reference_scale if pose is None else None
    if pose is None and td.neutral is not None and np.array_equal(uniq, np.arange(td.n_frames)):
        neutral = td.neutral  # the same fit over the same frames, done once per target (prepare_target)
    else:
        neutral = align_to_target(np.repeat(td.reference[None], len(uniq), 0), posed, uniq, fps=fps)
    # The 3D model (a few identity and expression bases) cannot draw the reference exactly: brought back to the
    # canonical frame, its posed neutral face is off the reference by a static residual (mouth corners ~3 px low,
    # the mouth ~2 px wide), which the emotion classifier reads as an expression. Put the residual back.
    residual = np.repeat(neutral_residual(neutral, td.reference), len(uniq), axis=0)
    # The target's own lasting expression (a grin, raised brows) is not part of its neutral face: taken away here
    # (posed like every displacement), so the command replaces it instead of adding to it.
    residual -= expression[None]
    neutral = (neutral + pose_displacement(residual, posed, uniq, td.reference, scale))[inverse]
    # drawn with lips of a plausible thickness under a strong expression (happy's inner lip lifted past its outline:
    # face.lips); the command itself (frontal, what the expression and smile measures read) is left as it is
    drawn = keep_lip_thickness(frontal, reference)
    commanded = tracker_compensation(drawn - reference[None], tracker_gain, fps, reference)
    adapted = neutral + pose_displacement(commanded, posed, frames, td.reference, scale)
    tracked = np.asarray(fit.landmarks, np.float32)[schedule]
    if pose is None:
        adapted = follow_tracked(adapted, neutral, tracked, fps, still=td.still)
    # the brows kept above the eyes: a frown lowers them by a share of the target's own room (face.brows)
    adapted = keep_brow_gap(adapted, tracked)
    return frontal, adapted, tracked, schedule, td.reliability[schedule]


def follow_tracked(adapted: np.ndarray, neutral: np.ndarray, tracked: np.ndarray, fps: float = FPS,
                   still: bool = False) -> np.ndarray:
    """The commanded landmarks (n, 68, 2) pixels, drawn relative to what the target frame shows (``tracked``).

    ``adapted`` = the target's posed neutral face (``neutral``) + the posed command. The 3D alignment places that
    neutral face a fraction of a pixel off the tracked one, differently in every frame (0.3-0.7 px of jitter, ~1 px
    of bias on carphone): drawn as is, every pixel of the face is resampled (softer) and wobbles, and a global offset
    drags the neck and hair along. So, per frame:

    1. the neutral face and the command are moved onto the tracked face by the similarity that fits the neutral
       face's stable points (eye corners, nose) onto the tracked ones;
    2. the upper face (brows, eyes, nose) keeps the tracked face's fast motion (blinks, the tracker's own reading
       of the frame) and takes the command in place of the target's *lasting* expression (its displacement from
       the neutral face averaged over ``face.amplitude.SLOW_SECONDS``; a still image has only that);
    3. the jaw line stays where the tracker sees the face end (the 3D model's neutral outline is off it by a pixel
       or two, which would drag the background, hair and collar beside it) and follows the lower lip's commanded
       motion (the jaw opening), fully at the chin, not at all by the ears;
    4. the lips are the command's (the speech replaces the target's), centred where the target's mouth lastingly is.

    Where the command equals the target, the displacement is zero: the warp leaves those pixels as they are."""
    from evpcli.face.normalize import apply_transform, similarity_fit

    a = np.asarray(adapted, np.float64)
    nt = np.asarray(neutral, np.float64)
    t = np.asarray(tracked, np.float64)
    sim = similarity_fit(nt[:, STABLE], t[:, STABLE])  # (n, 2, 3)
    a = apply_transform(a, sim)
    nt = apply_transform(nt, sim)
    r = t - nt  # the target's own expression (and the tracker's reading) over its neutral face, per frame
    if still or len(r) < 3:
        slow = np.repeat(r.mean(0, keepdims=True), len(r), 0)
    else:
        slow = lasting(r, fps)
    out = a + KEEP_FAST[None, :, None] * (r - slow)
    # the mouth where the target's mouth is: the lasting offset of its centre (the 3D model places a turned head's
    # mouth a few pixels off) is kept, its shape is the command's
    out[:, MOUTH] += slow[:, MOUTH].mean(axis=1, keepdims=True)
    out[:, JAW] = t[:, JAW] + JAW_FOLLOW[None, :, None] * (out[:, 57:58] - t[:, 57:58])
    return out.astype(np.float32)


def tracker_compensation(displacement: np.ndarray, gain: float = TRACKER_GAIN, fps: float = FPS,
                         reference: np.ndarray | None = None) -> np.ndarray:
    """Displacements from the reference (T, 68, 2), canonical frame -> what to draw so that the tracker reads them
    back: the slow part (:func:`evpcli.face.amplitude.lasting`: the centred moving average over ``SLOW_SECONDS``,
    edges held) divided by ``gain``, the fast part (speech motion, which the tracker follows) unchanged. With the
    ``reference`` (68, 2), lips the prediction closes are not pushed through each other: no inner-lip pair ends up
    more crossed than in the prediction (or crossed at all where the prediction keeps it apart). ``gain`` 1 returns
    the input. (T, 68, 2) float32."""
    d = np.asarray(displacement, np.float32)
    if gain == 1.0 or len(d) == 0:
        return d
    slow = lasting(d, fps).astype(np.float32)
    out = d + (1.0 / gain - 1.0) * slow
    if reference is not None:
        upper, lower = UPPER_INNER_LIP, LOWER_INNER_LIP
        ref = np.asarray(reference, np.float32)
        gap_pred = (ref[lower, 1] - ref[upper, 1])[None] + d[:, lower, 1] - d[:, upper, 1]  # (T, 3)
        gap_out = (ref[lower, 1] - ref[upper, 1])[None] + out[:, lower, 1] - out[:, upper, 1]
        out[:, lower, 1] += np.maximum(np.minimum(gap_pred, 0.0) - gap_out, 0.0)
    return out.astype(np.float32)


def neutral_residual(posed_neutral: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """What the posed neutral faces (T, 68, 2) target pixels miss of the reference (68, 2): the reference minus
    their mean in the canonical frame (similarity-normalised like every landmark the models read) -> (1, 68, 2)."""
    from evpcli.face.normalize import normalise

    normalised, _ = normalise(np.asarray(posed_neutral, np.float32))
    return (np.asarray(reference, np.float32) - normalised.mean(axis=0))[None]


def pose_displacement(displacement: np.ndarray, fit, frames: np.ndarray, reference: np.ndarray,
                      reference_scale: float | None = None) -> np.ndarray:
    """Displacements (T, 68, 2) in the canonical frontal frame -> target pixels of each frame: scaled from the
    canonical face's size to the frame's (the 3D fit's scale over the reference's own lifted scale, given as
    ``reference_scale`` or fitted here) and turned by the frame's rotation (its image-plane 2x2 block: roll, and the
    foreshortening of yaw and pitch). (T, 68, 2) float32."""
    if reference_scale is None:
        from evpcli.face.pose import fit_landmarks

        lifted = fit_landmarks(np.asarray(reference, np.float64)[None], model=fit.model, free_rotation=False)
        reference_scale = float(lifted.scale[0])
    k = np.asarray(fit.scale, np.float64)[frames] / float(reference_scale)
    r = np.asarray(fit.rotation, np.float64)[frames][:, :2, :2]
    return (k[:, None, None] * np.einsum("tij,tnj->tni", r, np.asarray(displacement, np.float64))).astype(np.float32)



SMILE_FLOOR = 0.25  # a command's happy coefficient under this is no smile (smile_removed)
TEXTURE_SMILE = 0.3  # a target's own smile fainter than this is undone in its shape only (smile_removed): a faint
# closed-mouth smile has no grin's teeth or deep folds to take away, and the folds' softening (engines.smile) would
# take a moustache and beard with them (the bearded man: his neutral render read neutral to face-api either way)


def smile_removed(reference: np.ndarray, frontal: np.ndarray, fps: float = FPS) -> np.ndarray:
    """How much of the target's own lasting smile each frame's command takes away, (n,) float32 in [0, 1], for the
    renderer to undo the smile's texture (:mod:`evpcli.engines.smile`: the grin's teeth, the folds) by as much.

    ``reference`` (68, 2) the target's reference face as read (:func:`evpcli.face.expression.estimate_expression`:
    its smile, the coefficient ``s`` of the happy prototype; 0 for a face that does not smile), ``frontal`` (n, 68, 2)
    the commanded landmarks (:func:`drive`'s first output, canonical, at ``fps``). The command's smile ``c(t)`` is
    the happy coefficient of its lasting displacement from the target's neutral face, counted from
    :data:`SMILE_FLOOR` (``c' = max(c - floor, 0) / (1 - floor)``); the share removed is ``(s - c') / s``, clipped
    to [0, 1]: 1 for sad, angry, neutral or contempt on a smiling photo, 0 for happy (at least as broad a smile as
    the target's), 0 everywhere for a target that does not smile or smiles fainter than :data:`TEXTURE_SMILE` (its
    smile's shape is still taken from the reference the network reads: :func:`drive`)."""
    from evpcli.face.amplitude import lasting, prototype_coefficient
    from evpcli.face.expression import neutral_reference

    frontal = np.asarray(frontal, np.float64)
    neutral, reading = neutral_reference(reference)
    own = float(reading.coefficients.get("happy", 0.0))
    if own < TEXTURE_SMILE or len(frontal) == 0:
        return np.zeros(len(frontal), np.float32)
    command = prototype_coefficient(lasting(frontal - np.asarray(neutral, np.float64)[None], fps), "happy")
    # what other emotions project onto the happy prototype (angry's tightened lids, contempt's one-sided corner,
    # disgust's raised upper lip: up to +0.2 with the shipped models) is no smile
    smile = np.maximum(command - SMILE_FLOOR, 0.0) / (1.0 - SMILE_FLOOR)
    return np.clip((own - smile) / own, 0.0, 1.0).astype(np.float32)


def emotion_amount(model, code: np.ndarray, n: int, emotion: str, fps: float = FPS) -> np.ndarray:
    """How much of ``emotion``'s shading each of ``n`` output frames draws (:mod:`evpcli.engines.shading`), (n,)
    float32 >= 0: the code's weight of that emotion (:func:`evpcli.face.amplitude.code_weights`: ``--emotion
    angry`` at intensity K weighs K for angry, every other emotion name and the neutral face 0; a clip, a mix or an
    interpolation weighs what it holds, frame by frame). ``code`` (D,) or (T, D) at 25 fps; 0 everywhere for a
    model without the emotions' mean codes."""
    from evpcli.face.amplitude import code_weights

    means = getattr(model, "emotion_means", None) or {}
    if "neutral" not in means or emotion not in means or n <= 0:
        return np.zeros(max(n, 0), np.float32)
    w = np.asarray(code_weights(np.asarray(code), means)[emotion], np.float64)
    if w.ndim == 0:
        return np.full(n, float(w), np.float32)
    return _resample(w.astype(np.float32)[:, None], n)[:, 0]


def frown_amount(model, code: np.ndarray, n: int, fps: float = FPS) -> np.ndarray:
    """How much of a frown's shading each of ``n`` output frames draws: :func:`emotion_amount` of angry."""
    return emotion_amount(model, code, n, "angry", fps)


def shading_amounts(model, code: np.ndarray, n: int, fps: float = FPS) -> dict[str, np.ndarray]:
    """Every shaded emotion's amount per output frame (:data:`evpcli.engines.shading.SHADERS`, :func:`emotion_amount`),
    for :meth:`evpcli.engines.warp.WarpRenderer.plan`."""
    from evpcli.engines.shading import SHADERS

    return {emotion: emotion_amount(model, code, n, emotion, fps) for emotion in SHADERS}
