"""The neural renderer (issue 15) with a tiny config: shapes, the hybrid's residual, losses that fall, exact resume,
paste-back that leaves the frame alone outside its mask, and the workspace path (train, find, render)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from evpcli.config import NeuralRendererConfig, RendererTrainConfig
from evpcli.face.normalize import apply_transform
from evpcli.nets.renderer import (MultiScaleDiscriminator, RendererGenerator, TemporalDiscriminator,
                                  generator_in_channels, warp_by_flow)
from evpcli.engines.neural import (NeuralRenderer, condition, crop_affine, crop_image, paste_back, paste_mask)
from evpcli.engines.warp import WarpRenderer
from tests.renderdata import open_mouth, synth_target

TINY = NeuralRendererConfig(size=32, channels=(8, 16), res_blocks=1, d_channels=8, d_layers=2, d_scales=2, hybrid=False)
TINY_TRAIN = RendererTrainConfig(epochs=3, steps_per_epoch=12, batch_size=2, seq_len=3, lr=1e-3, source_offset=8)


@pytest.fixture(scope="module")
def synth():
    return synth_target(128)


@pytest.fixture(scope="module")
def data(synth):
    from evpcli.train.renderer_data import prepare_training_target

    return prepare_training_target(iter(synth.frames), synth.landmarks, synth.valid, TINY, TINY_TRAIN)


@pytest.mark.parametrize("hybrid", [False, True])
def test_network_shapes(hybrid):
    cfg = dataclasses.replace(TINY, hybrid=hybrid)
    g, d, td = RendererGenerator(cfg), MultiScaleDiscriminator(cfg), TemporalDiscriminator(cfg)
    x = torch.rand(2, generator_in_channels(cfg), 32, 32) * 2 - 1
    y, flow, mask = g.parts(x)
    assert y.shape == (2, 3, 32, 32) and flow.shape == (2, 2, 32, 32) and mask.shape == (2, 1, 32, 32)
    assert y.abs().max() <= 1.0
    feats = d(x[:, :7], y)
    assert len(feats) == 2 and feats[0][-1].shape[1] == 1 and feats[1][-1].shape[-1] < feats[0][-1].shape[-1]
    assert td(torch.rand(2, 3, 3, 32, 32))[0][-1].shape[:2] == (2, 1)


def test_untrained_hybrid_is_the_warp_input():
    cfg = dataclasses.replace(TINY, hybrid=True, flow=False)
    x = torch.rand(1, generator_in_channels(cfg), 32, 32) * 2 - 1
    assert torch.equal(RendererGenerator(cfg)(x), x[:, -3:])  # residual starts at zero


def test_flow_warp_moves_pixels():
    img = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    assert torch.allclose(warp_by_flow(img, torch.zeros(1, 2, 8, 8)), img)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 1.0  # out(x) = img(x + 1)
    assert torch.allclose(warp_by_flow(img, flow)[..., :-1], img[..., 1:])


def test_crop_and_paste_round_trip(synth):
    frame, lm = synth.frames[10], synth.landmarks[10]
    cfg = dataclasses.replace(TINY, size=128)
    affine = crop_affine(lm, cfg)
    crop = crop_image(frame, affine, 128)
    lmc = apply_transform(lm, affine)
    # the face sits where the canonical frame puts it: eyes level, centred
    assert abs(lmc[36, 1] - lmc[45, 1]) < 3 and abs(lmc[[36, 45], 0].mean() - 64) < 4
    mask = paste_mask(lmc, lmc, 128)
    assert mask[0].max() == 0 and mask[:, 0].max() == 0 and mask[int(lmc[30, 1]), int(lmc[30, 0])] == 1.0
    out, box, alpha = paste_back(frame, crop, mask, affine)
    inside = alpha > 0.99
    diff = np.abs(out[box.y0:box.y1, box.x0:box.x1].astype(int) - frame[box.y0:box.y1, box.x0:box.x1])[inside]
    assert diff.mean() < 4  # resampled twice, nothing else
    # with the frame's own detail kept (the hybrid's paste onto the warp output), the round trip is exact
    exact, _, _ = paste_back(frame, crop, mask, affine, detail=(frame, crop))
    assert np.array_equal(exact, frame)
    # a frame twice as large (face twice as big) gives nearly the same crop: area-averaged, not aliased
    big = np.repeat(np.repeat(frame, 2, 0), 2, 1)
    crop2 = crop_image(big, crop_affine(lm * 2 + 0.5, cfg), 128)
    assert np.abs(crop2.astype(int) - crop).mean() < 6


def test_condition_channels(synth):
    lm = synth.landmarks[0]
    affine = crop_affine(lm, TINY)
    c = condition(crop_image(synth.frames[0], affine, 32), apply_transform(lm, affine), TINY)
    assert c.shape == (7, 32, 32) and c.dtype == np.float32 and 0 <= c.min() and c.max() <= 1
    assert c[0].max() > 0.5  # the sketch is drawn


@pytest.mark.parametrize("hybrid", [False, True])
def test_render_changes_only_inside_its_mask(synth, data, hybrid):
    cfg = dataclasses.replace(TINY, hybrid=hybrid)
    gen = RendererGenerator(cfg).eval()
    r = NeuralRenderer(gen, cfg, warp=WarpRenderer(data.bank) if hybrid else None)
    frame, lm = synth.frames[5], synth.landmarks[5]
    cmd = open_mouth(lm, 10.0)
    for _ in range(2):  # the second frame reads the first one back
        out = r.render(frame, lm, cmd, 1.0)
    mask = r.last.face_mask((frame.shape[1], frame.shape[0]))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], frame[mask == 0])
    assert (mask > 0.5).any() and np.abs(out.astype(int) - frame)[mask > 0.5].mean() > 1
    assert np.array_equal(r.render(frame, lm, cmd, 0.0), frame)  # unreliable: passes through
    with pytest.raises(ValueError):
        NeuralRenderer(RendererGenerator(dataclasses.replace(TINY, hybrid=True)))  # the hybrid needs the warp


@pytest.mark.parametrize("hybrid", [False, True])
def test_a_fade_moves_the_face_back_instead_of_cross_fading_two_faces(synth, data, hybrid):
    """As the warp's (engines.warp.FADE_ALPHA): towards an occlusion the command moves back to the face's own shape
    before the pixels fade; a cross-fade of a face moved far (sad's raised brows) drew it twice. At half the
    reliability the frame is the halfway command's render."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, hybrid=hybrid)
    r = NeuralRenderer(RendererGenerator(cfg).eval(), cfg, warp=WarpRenderer(data.bank) if hybrid else None)
    frame, lm = synth.frames[5], synth.landmarks[5]
    cmd = open_mouth(lm, 10.0)
    cmd[17:27, 1] -= 5.0  # the brows raised far
    r.reset()
    faded = r.render(frame, lm, cmd, 0.5).astype(float)
    r.reset()
    halfway = r.render(frame, lm, lm + 0.5 * (cmd - lm), 1.0).astype(float)
    r.reset()
    full = r.render(frame, lm, cmd, 1.0).astype(float)
    assert np.abs(faded - halfway).max() <= 1.0
    assert np.abs(full - halfway).max() > 10  # the command moves the face: the test can tell the two apart


@pytest.mark.parametrize("hybrid", [pytest.param(False, marks=pytest.mark.slow), True])  # the default (hybrid) always
def test_losses_fall(data, tmp_path, hybrid):
    from evpcli.train.renderer import fit_renderer, unroll
    from evpcli.train.renderer_data import batch_tensors, cache_frames, make_batch, sequence_starts

    cfg = dataclasses.replace(TINY, hybrid=hybrid)
    # the hybrid starts from the warp renderer's output (already close): it needs more steps to improve on it
    train = dataclasses.replace(TINY_TRAIN, epochs=4, steps_per_epoch=30) if hybrid else TINY_TRAIN
    big = dataclasses.replace(train, batch_size=8, seed=5)  # a batch the run does not train on
    bt = batch_tensors(make_batch(data, cache_frames(data, cfg, big), sequence_starts(data, 3), cfg, big), "cpu")

    def batch_l1(gen):  # the hybrid: inside the paste mask (what rendering pastes); the plain network: everywhere
        with torch.no_grad():
            d = (unroll(gen.eval(), bt, cfg)[0] - bt["real"]).abs()
            return float((d * bt["mask"]).sum() / (3 * bt["mask"].sum()) if hybrid else d.mean())

    torch.manual_seed(train.seed)
    before = batch_l1(RendererGenerator(cfg))  # the generator fit_renderer starts from (same seed)
    tr = fit_renderer(data, cfg, train, tmp_path / "r.pt", tmp_path / "log.csv", heldout_every=0)
    l1, tmp = tr.log.column("l1"), tr.log.column("temporal")
    assert l1[-1] < (0.95 if hybrid else 0.6) * l1[0], l1
    if not hybrid:  # the hybrid's frame-to-frame change starts at the warp's and stays there
        assert tmp[-1] < tmp[0], tmp
    assert batch_l1(tr.generator) < (0.99 if hybrid else 0.5) * before
    assert tr.steps == train.epochs * train.steps_per_epoch


def test_resume_continues_exactly(data, tmp_path):
    from evpcli.train.renderer import fit_renderer

    cfg = dataclasses.replace(TINY, hybrid=True)  # the warp renderer's state must not leak across a resume either
    short = dataclasses.replace(TINY_TRAIN, epochs=2, steps_per_epoch=4)
    full = dataclasses.replace(short, epochs=3)
    whole = fit_renderer(data, cfg, full, tmp_path / "a.pt", tmp_path / "a.csv", heldout_every=0)
    fit_renderer(data, cfg, short, tmp_path / "b.pt", tmp_path / "b.csv", heldout_every=0)
    resumed = fit_renderer(data, cfg, full, tmp_path / "b.pt", tmp_path / "b.csv", resume=True, heldout_every=0)
    assert resumed.start_epoch == 2 and resumed.steps == 4
    for (k, a), b in zip(whole.generator.state_dict().items(), resumed.generator.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), k
    assert len(resumed.log.rows) == 3


def test_cli_trains_finds_and_renders_with_the_neural_renderer(tiny_models, carphone_mp4, arctic_wav, tmp_path,
                                                               capsys):
    import json

    from evpcli import media
    from evpcli.cli import main
    from evpcli.errors import EvpError
    from evpcli.models import load_renderer

    _, ws = tiny_models
    run = lambda *a: main(["--workspace", str(ws.root), "-q", *map(str, a)])  # noqa: E731
    out = tmp_path / "neural.mp4"
    speech = tmp_path / "speech.wav"
    import soundfile as sf

    sf.write(speech, media.load_audio(arctic_wav)[:16000], 16000)
    # no renderer trained for this target yet: one line that says what to do, nothing written
    assert run("render", "--audio", speech, "--emotion", "happy", "--target", carphone_mp4, "--out", out,
               "--renderer", "neural") == 1
    err = capsys.readouterr().err
    assert "no neural renderer trained for carphone_pristine.mp4" in err and "evp train --stage renderer" in err
    assert not out.exists()
    assert run("train", "--stage", "renderer", "--epochs", "1", "--steps-per-epoch", "2") == 2  # --target needed
    capsys.readouterr()
    assert run("train", "--stage", "audio2lm", "--workers", "2") == 2  # a renderer option
    capsys.readouterr()
    assert run("train", "--stage", "renderer", "--target", carphone_mp4, "--epochs", "1", "--steps-per-epoch", "2",
               "--workers", "2", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["stage"] == "renderer" and r["steps"] == 2 and r["metrics"]["heldout_frames"] == 15
    assert set(r["metrics"]["heldout"]) == {"neural", "warp"}
    for f in ("log_csv", "loss_png", "grid_png", "metrics_json"):
        assert Path(r["files"][f]).is_file(), f
    assert run("train", "--stage", "renderer", "--target", carphone_mp4, "--epochs", "2", "--steps-per-epoch", "2",
               "--resume", "--json") == 0  # continues the finished 1-epoch run
    r = json.loads(capsys.readouterr().out)
    assert r["start_epoch"] == 1 and r["steps"] == 2 and r["key"].endswith("-e2")
    bundle = load_renderer(ws, carphone_mp4)
    assert bundle.source.key == r["key"]
    assert bundle.source.origin == "workspace" and bundle.config.size == 128 and not bundle.net.training
    assert bundle.config.hybrid  # the default: render builds the warp renderer it reads
    with pytest.raises(EvpError, match="no neural renderer trained for"):
        load_renderer(ws, arctic_wav)
    assert run("render", "--audio", speech, "--emotion", "happy", "--target", carphone_mp4, "--out", out,
               "--renderer", "neural", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    info = media.probe(out)
    assert r["renderer"] == "neural" and info.size == (176, 144) and info.has_audio and abs(info.duration - 1.0) < 0.1


# --------------------------------------------------------------------------- the data pipeline (issue 26)
def test_follow_resamples_like_cv2():
    """unroll's re-alignment of previous outputs: the same map as cv2.warpAffine (an independent implementation)."""
    import cv2

    from evpcli.train.renderer import follow

    rng = np.random.default_rng(0)
    img = rng.random((24, 24, 3)).astype(np.float32)
    a = np.deg2rad(4.0)
    m = np.array([[1.02 * np.cos(a), -1.02 * np.sin(a), 1.3], [1.02 * np.sin(a), 1.02 * np.cos(a), -0.7]])
    want = cv2.warpAffine(img, m, (24, 24), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    got = follow(torch.from_numpy(img.transpose(2, 0, 1))[None], torch.from_numpy(m)[None].float())[0]
    assert np.abs(got.numpy().transpose(1, 2, 0) - want).max() < 2e-3
    shift = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])  # out(x) = img(x + 1)
    x = torch.from_numpy(img.transpose(2, 0, 1))[None]
    assert torch.allclose(follow(x, shift)[..., :-1], x[..., 1:], atol=1e-5)


@pytest.fixture(scope="module")
def hybrid_cache(data):
    from evpcli.train.renderer_data import cache_frames

    cfg = dataclasses.replace(TINY, hybrid=True, size=64)
    return cfg, cache_frames(data, cfg, TINY_TRAIN)


def test_a_sample_gathers_what_the_renderer_computes(data, hybrid_cache):
    """The cached canvas, shifted by the sample's jitter, is the crop, condition and mask computed directly with
    the shifted crop; to_prev maps each frame's crop onto the previous frame's."""
    from evpcli.face.normalize import invert_transform
    from evpcli.engines.neural import compose_affine, condition_u8
    from torch.utils.data import default_collate

    from evpcli.train.renderer import follow
    from evpcli.train.renderer_data import batch_tensors, make_sample, sequence_starts

    cfg, cache = hybrid_cache
    starts = sequence_starts(data, 3)
    for seed in range(40):  # a draw with a shift in both directions
        rng = np.random.default_rng(seed)
        t0 = int(rng.choice(starts))
        dx, dy = rng.integers(-cache.pad, cache.pad + 1, 2)
        if dx and dy and dx != dy:
            break
    s = make_sample(data, cache, starts, np.random.default_rng(seed), cfg, TINY_TRAIN)
    assert s["real"].dtype == np.uint8 and s["real"].shape == (3, 3, 64, 64) and s["warp"].shape == (3, 3, 64, 64)
    inner = (slice(None), slice(4, -4), slice(4, -4))  # away from the crop's border (the canvas sees beyond it)
    affines = []
    for i, t in enumerate(range(t0, t0 + 3)):
        a = crop_affine(data.landmarks[t], cfg, (float(dx), float(dy)))
        affines.append(a)
        crop = crop_image(data.frames[t], a, 64)
        assert np.abs(s["real"][i].transpose(1, 2, 0).astype(int) - crop).mean() < 1.0
        cond = condition_u8(crop, apply_transform(data.landmarks[t], a), cfg)
        assert np.mean(s["cond"][i][inner] == cond[inner]) > 0.97
    for i in (1, 2):
        assert np.allclose(s["to_prev"][i], compose_affine(affines[i - 1], invert_transform(affines[i])), atol=1e-4)
        prev_in_cur = follow(torch.from_numpy(s["real"][i - 1][None].astype(np.float32)),
                             torch.from_numpy(s["to_prev"][i][None]))[0].numpy().transpose(1, 2, 0)
        direct = crop_image(data.frames[t0 + i - 1], affines[i], 64).astype(np.float32)
        assert np.abs(prev_in_cur - direct)[4:-4, 4:-4].mean() < 2.0
    # the paste masks the device computes from the cached ramps: the renderer's, to their rounding
    bt = batch_tensors(default_collate([s]), "cpu")  # a batch of this one sample
    for i, t in enumerate(range(t0, t0 + 3)):
        lm = apply_transform(data.landmarks[t], affines[i])
        diff = np.abs(bt["mask"][0, i, 0].numpy() - paste_mask(lm, lm, 64))
        assert diff.max() < 0.06 and diff.mean() < 0.005  # on the rim: the canvas sees the face beyond the crop


def test_workers_give_the_same_weights(data, tmp_path):
    """Batches made by 2 worker processes train the same weights, bit for bit, as batches made in-process."""
    from evpcli.train.renderer import fit_renderer
    from evpcli.train.renderer_data import cache_frames

    cfg = dataclasses.replace(TINY, hybrid=True)
    train = dataclasses.replace(TINY_TRAIN, epochs=2, steps_per_epoch=2)
    cache = cache_frames(data, cfg, train)
    runs = [fit_renderer(data, cfg, dataclasses.replace(train, workers=w), tmp_path / f"{w}.pt", tmp_path / f"{w}.csv",
                         heldout_every=0, cache=cache).generator.state_dict() for w in (0, 2)]
    for k, v in runs[0].items():
        assert torch.equal(v, runs[1][k]), k
