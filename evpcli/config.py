"""Every default of the pipeline, as frozen dataclasses. Saved beside each model that uses them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
"""MEAD's eight emotions; the index in this tuple is the class label everywhere."""

LEVELS: tuple[int, ...] = (1, 2, 3)

DISENTANGLE_LOSSES: tuple[str, ...] = ("cross", "self", "cla", "con")
"""The disentanglement losses (EVP eq. 2-6); ``--ablate`` names one to turn off, ``evaluate --ablations`` compares
the models trained without each."""

FPS = 25.0
"""Video frames per second of everything the models read and write: training clips, rendered videos (4 MFCC hops
of 10 ms per frame)."""


@dataclass(frozen=True)
class AudioConfig:
    """The audio front end of EVP (the numbers of the authors' release).

    MFCC: 25 ms window, 10 ms hop, 26 mel filters, n_fft 512, 13 cepstra, c0 dropped -> 12 per 10 ms.
    One video frame at 25 fps spans ``hop_per_frame`` = 4 MFCC frames; the network input for video frame t
    is a window of ``window`` = 28 MFCC frames centred on it (3 frames of context before, 4 after).
    """

    sample_rate: int = 16000
    pad_seconds: float = 0.12  # silence added at each end before MFCC
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 26
    n_cepstra: int = 13  # c0 is dropped afterwards -> 12 coefficients
    preemphasis: float = 0.97
    lifter: int = 22
    fps: float = FPS
    window: int = 28  # MFCC frames per video-frame window (280 ms)

    @property
    def n_coeffs(self) -> int:
        return self.n_cepstra - 1

    @property
    def hop_per_frame(self) -> int:
        """MFCC frames per video frame (4 at 25 fps and 10 ms hop)."""
        return int(round(self.sample_rate / self.fps / self.hop_length))


def check_ranges(cfg: Any, **ranges: tuple[float | None, float | None]) -> None:
    """Raise :class:`evpcli.errors.UsageError` naming the option (``--field-name``) when a field lies outside its
    inclusive ``(low, high)`` range (None: unbounded). Configs call it from ``__post_init__``, so every caller (the
    CLI, a script) gets the same checks."""
    from evpcli.errors import UsageError

    for name, (low, high) in ranges.items():
        value = getattr(cfg, name)
        if (low is not None and value < low) or (high is not None and value > high):
            option = "--" + name.replace("_", "-")
            bounds = (f"between {low:g} and {high:g}" if low is not None and high is not None
                      else f"at least {low:g}" if low is not None else f"at most {high:g}")
            raise UsageError(f"{option} must be {bounds}, got {value:g}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class FitConfig:
    """The 3D fit of a target video (``evp fit-pose``); weights are in units of the face's RMS radius.

    Landmarks are normalised to unit RMS radius (the jaw is about 2.7 radii wide), so ``huber`` 0.02 means 2 % of
    the radius (≈ 0.45 px on a face 60 px wide): landmarks further off than that count linearly, not
    quadratically. Priors pull coefficients to 0 (one unit ≈ one typical deviation of the basis); ``smooth_*``
    penalise frame-to-frame changes (rotation in radians, scale and translation in normalised units). The
    ``*_weight`` are the weights of landmark groups in the fit (see :func:`evpcli.face.pose.landmark_weights`);
    huber, prior_expression and the weights were chosen on synthetic videos (actors 0-3) and checked on others
    (actors 4-7, see docs/commands.md, fit-pose). The One-Euro filter (EVP's release: min cutoff 0.01 Hz, beta 0.7)
    smooths the poses afterwards: Euler angles in degrees, scale in % of its median, translation in pixels.
    """

    iterations: int = 15
    tolerance: float = 1e-6  # stop when the cost falls by less than this fraction
    damping: float = 1e-3  # initial Levenberg–Marquardt damping (relative to the diagonal)
    huber: float = 0.02
    contour_weight: float = 0.3  # weight of the jaw contour landmarks (0-16), which slide over the face as it turns
    brow_weight: float = 0.3  # weight of the brows (17-26)
    mouth_weight: float = 0.3  # weight of the lips (48-67)
    prior_identity: float = 0.02
    prior_expression: float = 0.1
    smooth_rotation: float = 2.0
    smooth_scale: float = 20.0
    smooth_translation: float = 2.0
    smooth_expression: float = 0.02
    one_euro: bool = True
    one_euro_min_cutoff: float = 0.01
    one_euro_beta: float = 0.7
    one_euro_d_cutoff: float = 1.0


@dataclass(frozen=True)
class LandmarkConfig:
    """Landmark detection, tracking and smoothing (see :mod:`evpcli.face.landmarks`).

    Part of every landmark artifact's cache key: changing a value re-tracks the clips.
    """

    detect_max_side: int = 320  # frames are shrunk to at most this side (pixels) before face detection
    detect_retry_side: int = 800  # ... and to this one when nothing was found (small faces in big frames)
    detect_upsample: int = 1  # dlib detector upsampling: finds faces down to about 40 px of the shrunk frame
    max_residual: float = 0.3  # Procrustes residual (face.normalize.procrustes_residual) above which a shape is rejected
    max_scale_change: float = 0.25  # a tracked face whose size changes more than this from one frame to the next is lost
    max_drift: float = 0.1  # mean distance (inter-ocular distances) from the detector's shape at which a track restarts
    verify_every: int = 25  # frames between checks that the detector still sees a face in the tracked box
    min_similarity: float = 0.5  # correlation of the face patch with its last confirmed look below which we check at once
    max_gap: int = 6  # gaps up to this many frames (0.24 s) are interpolated and stay valid; longer ones: valid False
    min_detected: float = 0.5  # a clip with a face in fewer than this fraction of frames fails
    smooth_window_stable: int = 9  # Savitzky-Golay window (frames) on jaw, brows and nose: -3 dB at 3.0 Hz
    smooth_window_eyes: int = 5  # on the eyes: -3 dB at 5.9 Hz (blinks last 4-8 frames)
    smooth_window_mouth: int = 7  # on the lips (order 4): -3 dB at 7.0 Hz, gain 0.98 at 4 Hz, 0.86 at 6 Hz
    smooth_order_stable: int = 2
    smooth_order_eyes: int = 2
    smooth_order_mouth: int = 4


@dataclass(frozen=True)
class PairsConfig:
    """build-pairs: DTW over MFCC rows with an L1 frame cost and the steps (i+1,j), (i,j+1), (i+1,j+1).

    The DTW is exact (compiled with numba, :mod:`evpcli.dtw`): the optimum of the unquantised L1 (or, with
    ``frame_cost="l2"``, Euclidean) frame cost. ``window`` > 0 restricts paths to a Sakoe-Chiba band of that many
    MFCC rows (10 ms each) around the line joining the two clips' first and last rows: faster, and the banded
    optimum can cost more than the exact one.
    """

    frame_cost: str = "l1"  # "l1" (the paper's) or "l2"
    window: int = 0  # Sakoe-Chiba band half-width in MFCC rows (10 ms); 0: none (exact)
    max_pairs_per_sentence: int = 0  # 0: every pair of clips in different emotions
    seed: int = 0  # which pairs are kept when capped

    def __post_init__(self) -> None:
        from evpcli.errors import UsageError

        if self.frame_cost not in ("l1", "l2"):
            raise UsageError(f"--frame-cost must be l1 or l2, got {self.frame_cost!r}")
        check_ranges(self, max_pairs_per_sentence=(0, None), window=(0, None))


@dataclass(frozen=True)
class DisentangleConfig:
    """Sizes of the cross-reconstructed emotion disentanglement networks (the sizes of the authors' release).

    Content encoder Ec: 2D convs over the 1x28x12 window with ``content_channels`` (max-pool 2x2 after the
    layers listed in ``content_pool_after``), then FC -> ``content_dim`` (one code per window).
    Emotion encoder Ee: 1D convs along time over the 12 coefficients as channels (``emotion_channels``), mean over
    time, FC -> ``emotion_dim``, ReLU (non-negative, as in the authors' release).
    Decoder D: concat(content, emotion) -> FC -> transposed convs (``decoder_channels``) -> 28x12 window.
    Classifier Ce: Linear emotion_dim -> n_emotions.
    ``cmvn``: the content encoder reads each clip's windows normalised by that clip's own per-coefficient mean and
    standard deviation (cepstral mean and variance normalisation, the channel-robustness step of speech
    recognition) instead of the training set's; the emotion encoder keeps the global normalisation (a clip's
    average spectrum carries its voice quality, part of the emotion).
    """

    n_coeffs: int = 12
    window: int = 28
    content_channels: tuple[int, ...] = (64, 128, 256, 256, 512)
    content_pool_after: tuple[int, ...] = (1, 4)
    content_dim: int = 256
    emotion_channels: tuple[int, ...] = (64, 128, 256)
    emotion_dim: int = 128
    decoder_channels: tuple[int, ...] = (256, 128, 64)
    n_emotions: int = 8
    cmvn: bool = True  # per-utterance cepstral mean/variance normalisation of the content encoder's input

    @classmethod
    def from_dict(cls, data: dict) -> DisentangleConfig:
        """A stored config. Configs written before ``cmvn`` existed (no key) describe networks trained without it."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        data = {"cmvn": False, **data}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class DisentangleTrainConfig:
    """Training of the disentanglement networks (losses and optimiser as in the authors' release).

    L_dis = w_cross L_cross + w_self L_self + w_cla L_cla + w_con L_con (L1 reconstruction, all weights 1);
    ``ablate`` names one loss to turn off. Adam lr 2e-4, betas (0.5, 0.999). An epoch is ``steps_per_epoch``
    batches of aligned tuples (x_im, x_jn, x_in, x_jm). The emotion encoder is first pre-trained as a classifier
    for ``pretrain_steps`` batches of 4 x batch_size single windows (Adam, ``pretrain_lr``). The last
    ``holdout_sentences`` sentence ids (sorted) are never trained on; the held-out metrics use them.
    """

    epochs: int = 10
    steps_per_epoch: int = 30
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_cross: float = 1.0
    w_self: float = 1.0
    w_cla: float = 1.0
    w_con: float = 1.0
    ablate: str = ""  # "", "cross", "self", "cla" or "con"
    pretrain_steps: int = 300
    pretrain_lr: float = 1e-3
    holdout_sentences: int = 2
    eval_tuples: int = 256  # held-out tuples for the cross-reconstruction and content metrics
    augment_copies: int = 2  # augmented copies of every clip's audio (AugmentConfig) for the content path; 0: none
    seed: int = 0

    def __post_init__(self) -> None:
        from evpcli.errors import UsageError

        check_ranges(self, epochs=(1, None), steps_per_epoch=(1, None), batch_size=(1, None), lr=(0, None),
                     holdout_sentences=(0, None), pretrain_steps=(0, None), eval_tuples=(1, None))
        if self.ablate not in ("", *DISENTANGLE_LOSSES):
            raise UsageError(f"unknown --ablate {self.ablate!r}; use one of {', '.join(DISENTANGLE_LOSSES)}")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time audio augmentation (:mod:`evpcli.augment`): each augmented copy of a clip draws one chain of
    pitch shift, room reverberation, telephone band, additive noise and gain, each with its probability.
    Every transform keeps the clip's length (aligned with its landmarks and DTW pairs)."""

    noise_prob: float = 0.7
    snr_db: tuple[float, float] = (5.0, 30.0)
    reverb_prob: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.7)
    telephone_prob: float = 0.35
    pitch_prob: float = 0.3
    pitch_semitones: float = 3.0
    gain_db: tuple[float, float] = (-12.0, 6.0)


@dataclass(frozen=True)
class Audio2LandmarkConfig:
    """The audio-to-landmark network (EVP section 3.2): identity MLP identity_in -> 256 -> 512, a 3-layer LSTM
    (hidden 256) over [identity, content 256, emotion 128] per frame, Linear 256 -> pca_dim coefficients.

    ``identity_in`` = 136: the actor's reference landmarks minus the canonical template, flattened and divided by
    the displacement scale. (The authors' release feeds 16 PCA coefficients of the reference; with a per-actor PCA the
    actor's own reference maps to zero, so we feed the landmarks themselves.)
    """

    identity_in: int = 136
    identity_hidden: int = 256
    identity_dim: int = 512
    content_dim: int = 256
    emotion_dim: int = 128
    lstm_hidden: int = 256
    lstm_layers: int = 3
    pca_dim: int = 16


@dataclass(frozen=True)
class Audio2LandmarkTrainConfig:
    """Training of the audio-to-landmark stage: sequences of ``seq_len`` frames, loss MSE on PCA coefficients
    + ``landmark_weight`` x MSE on landmarks (in units of ``disp_scale`` pixels). The disentanglement encoders are
    fine-tuned at ``encoder_lr`` only with ``finetune_encoders`` (the paper's setting; on a CPU it is ~20x slower
    per step, so by default the encoders stay fixed and each clip's content and emotion codes are computed once).
    An epoch is ``steps_per_epoch`` batches."""

    epochs: int = 15
    steps_per_epoch: int = 60
    batch_size: int = 16
    seq_len: int = 16
    lr: float = 1e-3
    encoder_lr: float = 5e-5
    finetune_encoders: bool = False
    landmark_weight: float = 10.0
    disp_scale: float = 8.0  # pixels of the 256 frame per unit
    emotion_windows: int = 12  # windows drawn from a clip for its emotion code during training
    augment_copies: int = 2  # augmented copies of every clip's audio (AugmentConfig) for the content path; 0: none
    lr_schedule: str = "cosine"  # or "constant"; cosine: 0-based epoch e trains at lr * (1 + cos(pi e / epochs)) / 2
    seed: int = 0

    def __post_init__(self) -> None:
        from evpcli.errors import UsageError

        check_ranges(self, epochs=(1, None), steps_per_epoch=(1, None), batch_size=(1, None), seq_len=(2, None),
                     lr=(0, None), encoder_lr=(0, None), emotion_windows=(1, None))
        if self.lr_schedule not in ("constant", "cosine"):
            raise UsageError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")


@dataclass(frozen=True)
class LandmarkEmotionConfig:
    """The evaluation's emotion classifier of landmark sequences (temporal convs + mean/max pooling)."""

    n_points: int = 68
    hidden: int = 128
    n_classes: int = 8
    dropout: float = 0.2


@dataclass(frozen=True)
class SilenceGate:
    """Where speech is silent the mouth closes smoothly. Per-frame weight from the frame RMS placed between the clip's
    noise floor (its ``floor_percentile``-th percentile RMS; 0 for clean recordings with digital silence) and its
    95th-percentile RMS: 0 below ``low``, 1 above ``high`` of that range; with ``vad`` (and a waveform to run it on)
    also at most WebRTC's voice activity, so noise in pauses does not hold the mouth open; smoothed over ``smooth``
    frames. Lip and chin displacements are scaled by the weight towards a closed mouth (``close``: the reference
    face with its lips brought together) or towards the reference face itself."""

    low: float = 0.03
    high: float = 0.12
    smooth: int = 3
    floor_percentile: float = 5.0
    vad: bool = True
    close: bool = True


@dataclass(frozen=True)
class RenderConfig:
    """The training-free warp renderer (:mod:`evpcli.engines.warp`) and its target analysis.

    Lengths are in inter-ocular distances (IOD, outer eye corners) unless named ``_px``. The face is warped from
    its tracked to its adapted landmarks (``warp`` "pwa": piecewise-affine over a fixed triangulation; "tps":
    thin-plate spline) inside a ring of fixed points around the head, and blended back with a mask feathered
    over ``feather`` IOD inside the ring. Maps are computed on a grid of at most ``map_side`` pixels and
    upsampled, so the cost does not grow with the face size.
    """

    warp: str = "pwa"  # "pwa" or "tps"
    ring_width: float = 1.45  # ring half-width, in half jaw widths
    ring_height: float = 1.2  # ring half-height, in nose-top-to-chin lengths
    ring_points: int = 20
    feather: float = 0.35
    map_side: int = 160
    # detail: where the warp magnifies the skin (a smile stretches the cheeks, sad the chin), its fine texture is
    # spread out and the face looks softer than the frame around it; an unsharp mask (Gaussian sigma 1 px) of gain
    # detail_gain x (local linear magnification - 1), at most detail_max, puts back what the stretch took
    # (engines.warp.restore_detail; 0 turns it off)
    detail_gain: float = 3.0
    detail_max: float = 1.0
    # ... and where it moves the skin by a fraction of a pixel (a resampling between pixels softens it: 0.76 of the
    # Laplacian's variance half a pixel off along both axes), an unsharp mask of detail_shift x the offset in pixels
    # (summed over both axes; engines.warp.subpixel_shift)
    detail_shift: float = 0.17
    # the cheeks beside the mouth's corners: the piecewise-affine maps smoothed there (a Gaussian of corner_smooth IOD
    # over a disc of corner_radius IOD off the lips), so a crease a smile drags from a corner bends as skin does
    # instead of kinking along the mesh's edges into a line (engines.geometry.smooth_corners; 0 turns it off)
    corner_smooth: float = 0.06
    corner_radius: float = 0.5
    # ... and on the lids' skin between a raised brow's hair and the upper lid (a Gaussian of brow_smooth IOD, off the
    # brows and the eyes' openings, where the command raises a brow 0.03-0.08 IOD or more over the frame's), so the
    # lid's crease and lashes' shadow bend as skin does instead of into zigzags (engines.geometry.smooth_brows; 0 turns
    # it off)
    brow_smooth: float = 0.06
    # mouth interior
    bank_size: int = 32  # frames kept in the mouth bank
    bank_candidates: int = 160  # frames whose mouth crops are held while choosing the bank
    open_min: float = 0.06  # inner-lip opening / mouth width above which a mouth counts as open
    # (a commanded opening over open_min / 2 shows one source, the frame's own mouth or a bank entry, never two
    # mixed: engines.mouth.MouthFiller)
    match_noise: bool = True  # add grain to filled mouth texture up to the frame's noise level
    # occlusion / reliability
    reliability_low: float = 9.0  # robust z-score of a face's appearance distance where reliability reaches 0
    reliability_high: float = 6.0  # ... and below which it is 1
    reliability_ramp: int = 6  # frames over which reliability fades in and out (no pops)
    min_reliability: float = 0.02  # below this a frame passes through untouched


# The hybrid neural renderer's warp input (training and rendering alike): the plain warp, without the detail
# restoration. The network learns the face's detail itself; sharpened warp noise in its input took the tiny
# test's hybrid gain over the warp from 2 % to 0.1 % (tests/test_neural_renderer.py::test_losses_fall).
HYBRID_WARP = RenderConfig(detail_gain=0.0, detail_shift=0.0)


@dataclass(frozen=True)
class NeuralRendererConfig:
    """The per-target neural renderer (EVP section 3.3, vid2vid style; :mod:`evpcli.nets.renderer`).

    The renderer works on a square face crop of ``size`` pixels, aligned by the similarity of the tracked stable
    points (eye corners, nose) onto the canonical 256 frame: the crop is ``crop_scale`` canonical jaw widths a
    side, centred at (128, ``crop_centre_y``) of that frame. The generator reads the guidance map (sketch of the
    landmarks + Canny edges outside the face), with ``part_maps`` one distance map per facial part (the release's),
    the ``n_prev`` previous output frames and, ``hybrid``, the warp renderer's output (it then learns the
    residual; the default: it beats the plain renderer on every measure in ``benchmarks/bench_neural_renderer.py``).
    With ``flow`` it predicts, like vid2vid, a flow that warps the previous frame, a mask and a
    hallucinated image, and blends them. U-Net: ``channels`` per level (the first at full size, each next one at
    half size), ``res_blocks`` residual blocks at the bottom. Discriminators: ``d_scales`` PatchGANs of
    ``d_layers`` stride-2 layers from ``d_channels`` over (condition, image), and a temporal PatchGAN over stacks
    of ``temporal_frames`` consecutive frames at half size.

    :data:`RENDERER_CPU` (this class's defaults) trains in minutes on 2 cores; :data:`RENDERER_GPU` is the
    release's size (512 px).
    """

    size: int = 128
    crop_scale: float = 1.75
    crop_centre_y: float = 112.0
    part_maps: bool = True
    n_prev: int = 2
    hybrid: bool = True
    flow: bool = True
    channels: tuple[int, ...] = (16, 32, 64, 128)
    res_blocks: int = 2
    d_channels: int = 16
    d_layers: int = 3
    d_scales: int = 2
    temporal_frames: int = 3

    @classmethod
    def from_dict(cls, data: dict) -> NeuralRendererConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


RENDERER_CPU = NeuralRendererConfig()
RENDERER_GPU = NeuralRendererConfig(size=512, channels=(32, 64, 128, 256, 384, 512), res_blocks=6, d_channels=64,
                                    d_layers=4, d_scales=3)


@dataclass(frozen=True)
class RendererTrainConfig:
    """Training of the neural renderer on the target video alone (``evp train --stage renderer``).

    Self-supervised: each training frame's guidance map from its own tracked landmarks -> that frame. The last
    ``holdout`` fraction of the frames is never trained on (the held-out metrics and the PNG grid use them).
    A step draws ``batch_size`` sequences of ``seq_len`` consecutive frames; the first frame of a sequence sees
    real previous frames (from up to ``prev_jitter`` frames away), the others the generator's own previous
    outputs pasted into the real frame (re-aligned to the next frame's crop), as at render time. The hybrid's warp
    input for frame t warps a frame up to ``source_offset`` frames away to t's landmarks, as rendering warps the
    target frame to speech-driven landmarks: ``warp_sources`` fixed offsets (magnitudes spread up to
    ``source_offset``, both signs), each rendered once per target as one continuous sequence. Each sequence is
    shifted by a random whole number of crop pixels up to ``jitter_px``. Generator loss: ``w_gan`` x LSGAN (image
    and temporal discriminators) + ``w_fm`` x discriminator feature matching + ``w_l1`` x L1 (weight 1 inside the
    paste mask, ``l1_outside`` outside) + ``w_temporal`` x L1 of frame-to-frame differences against the real ones.
    Adam (``lr``, betas 0.5/0.999) for both players. No pretrained network is used (no perceptual loss: none ships in a package).

    Speed (issue 26): everything a training frame alone determines is computed once per run; ``workers`` processes
    assemble the batches (0: the training process itself; the weights do not depend on it); on CUDA
    ``mixed_precision`` (bf16 autocast) and ``channels_last``, ignored on a CPU (CPU training stays float32).
    """

    epochs: int = 8
    steps_per_epoch: int = 60
    batch_size: int = 4
    seq_len: int = 3
    lr: float = 2e-4
    w_gan: float = 1.0
    w_fm: float = 10.0
    w_l1: float = 20.0
    l1_outside: float = 0.2
    w_temporal: float = 10.0
    prev_jitter: int = 6
    source_offset: int = 25
    jitter_px: float = 3.0  # random crop shift (whole pixels of the crop, up to this) per sequence
    warp_sources: int = 4  # the hybrid's warp input: this many source offsets, rendered once per target
    holdout: float = 0.15
    max_frames: int = 0  # 0: every frame of the target
    seed: int = 0
    workers: int = 0  # batch-assembling processes (torch DataLoader); 0: in the training process
    mixed_precision: bool = True  # bf16 autocast, on CUDA only
    channels_last: bool = True  # channels-last networks, on CUDA only
