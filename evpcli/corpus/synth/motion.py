"""Head motion and blinks: smooth random sway with the emotion's mean pose, blink timing; the Euler convention."""

from __future__ import annotations

import numpy as np

from evpcli.corpus.synth.style import FPS, EmotionStyle
from evpcli.face.pose import euler_from_rotation, rotation_from_euler

# One Euler convention for the project, defined with the pose fitter: R = Rz(roll) @ Ry(yaw) @ Rx(pitch).
euler_to_rotation = rotation_from_euler
rotation_to_euler = euler_from_rotation


def smooth_noise(rng: np.random.Generator, n: int, n_waves: int = 3, fmin: float = 0.1, fmax: float = 0.6) -> np.ndarray:
    """(n,) sum of a few slow sinusoids, peak amplitude about 1, at 25 fps."""
    t = np.arange(n) / FPS
    out = np.zeros(n)
    for _ in range(n_waves):
        f, ph, amp = rng.uniform(fmin, fmax), rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.0)
        out += amp * np.sin(2 * np.pi * f * t + ph)
    return out / n_waves * 1.6


def head_pose(rng: np.random.Generator, n: int, style: EmotionStyle, a: float) -> np.ndarray:
    """(n, 3) yaw, pitch, roll in degrees: smooth sway plus the emotion's mean pose, within +-20 deg."""
    motion = 1 + (style.motion - 1) * a
    yaw = 9.0 * motion * smooth_noise(rng, n) + rng.uniform(-4, 4)
    pitch = 5.0 * motion * smooth_noise(rng, n) + style.pitch_deg * a + rng.uniform(-2, 2)
    roll = 4.0 * motion * smooth_noise(rng, n) + style.roll_deg * a
    return np.clip(np.stack([yaw, pitch, roll], 1), -20, 20)


def blinks(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) eyelid closure 0..1: a blink every 2-4.5 s, each about 0.2 s long."""
    t = np.arange(n) / FPS
    out = np.zeros(n)
    tb = rng.uniform(0.4, 2.0)
    while tb < n / FPS + 0.2:
        out = np.maximum(out, np.exp(-0.5 * ((t - tb) / 0.055) ** 2))
        tb += rng.uniform(2.0, 4.5)
    return out
