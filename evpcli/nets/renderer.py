"""The per-target neural renderer's networks (EVP section 3.3, after vid2vid): torch modules only.

- :class:`RendererGenerator`: a U-Net over the face crop. Input channels (all at ``size`` x ``size``): the
  guidance map (1), optionally one distance map per facial part (:data:`N_PARTS`), the ``n_prev`` previous
  output frames (3 each, in [-1, 1]) and, for the hybrid, the warp renderer's output (3). Output: an RGB crop in
  [-1, 1]. With ``flow`` (vid2vid) it predicts a flow that warps the previous frame, a soft mask and a
  hallucinated image, and returns ``mask * warped_previous + (1 - mask) * hallucinated``; the hybrid's
  hallucinated image is the warp renderer's output plus a predicted residual (zero at initialisation, so an
  untrained hybrid reproduces the warp).
- :class:`MultiScaleDiscriminator`: PatchGANs over (condition, image) at ``d_scales`` scales.
- :class:`TemporalDiscriminator`: a PatchGAN over ``temporal_frames`` consecutive frames stacked as channels,
  at half size (judges motion, not detail).

Discriminators return every layer's features (for the feature-matching loss); the last is the patch score map.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from evpcli.config import NeuralRendererConfig

N_PARTS = 6
"""Distance maps of the generator input: jaw, brows, nose, eyes, outer lip, inner lip."""


def generator_in_channels(cfg: NeuralRendererConfig) -> int:
    return 1 + (N_PARTS if cfg.part_maps else 0) + 3 * cfg.n_prev + (3 if cfg.hybrid else 0)


def condition_channels(cfg: NeuralRendererConfig) -> int:
    """Channels of the discriminators' condition: the guidance map and the part maps."""
    return 1 + (N_PARTS if cfg.part_maps else 0)


def _conv(cin: int, cout: int, stride: int = 1, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, padding_mode="reflect" if stride == 1 else "zeros")]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, padding_mode="reflect"), nn.InstanceNorm2d(ch, affine=True),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(ch, ch, 3, 1, 1, padding_mode="reflect"),
                                  nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def warp_by_flow(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B, C, H, W) by ``flow`` (B, 2, H, W), pixels: out(p) = image(p + flow(p))."""
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=image.device, dtype=image.dtype),
                            torch.arange(w, device=image.device, dtype=image.dtype), indexing="ij")
    gx = (xs[None] + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys[None] + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border", align_corners=True)


class RendererGenerator(nn.Module):
    """Guidance (+ part maps) + previous frames (+ warp output) -> face crop; see the module docstring.

    ``forward(x)``: ``x`` (B, :func:`generator_in_channels`, S, S) laid out as [guidance, parts, prev_1 ... prev_n,
    warp]; returns (B, 3, S, S) in [-1, 1]. :meth:`parts` also returns the flow (B, 2, S, S) pixels and the mask
    (B, 1, S, S) (None without ``flow``).
    """

    def __init__(self, cfg: NeuralRendererConfig):
        super().__init__()
        self.cfg = cfg
        ch = list(cfg.channels)
        self.inp = _conv(generator_in_channels(cfg), ch[0], norm=False)
        self.down = nn.ModuleList([_conv(ch[i], ch[i + 1], stride=2) for i in range(len(ch) - 1)])
        self.res = nn.Sequential(*[ResBlock(ch[-1]) for _ in range(cfg.res_blocks)])
        # decoder level i: upsample from ch[i+1], concat the skip ch[i], conv to ch[i]
        self.up = nn.ModuleList([_conv(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(len(ch) - 1))])
        self.image = nn.Conv2d(ch[0], 3, 3, 1, 1, padding_mode="reflect")
        if cfg.hybrid:  # the residual starts at zero: an untrained hybrid is the warp renderer
            nn.init.zeros_(self.image.weight)
            nn.init.zeros_(self.image.bias)
        self.flow_mask = nn.Conv2d(ch[0], 3, 3, 1, 1, padding_mode="reflect") if cfg.flow else None
        if self.flow_mask is not None:
            nn.init.zeros_(self.flow_mask.weight)
            nn.init.zeros_(self.flow_mask.bias)
        n_cond = condition_channels(cfg)
        self.prev_slice = slice(n_cond, n_cond + 3) if cfg.n_prev else None
        self.warp_slice = slice(n_cond + 3 * cfg.n_prev, n_cond + 3 * cfg.n_prev + 3) if cfg.hybrid else None

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        skips = [self.inp(x)]
        for d in self.down:
            skips.append(d(skips[-1]))
        h = self.res(skips.pop())
        for up in self.up:
            skip = skips.pop()
            h = up(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="nearest"), skip], 1))
        if self.warp_slice is not None:
            image = (x[:, self.warp_slice] + self.image(h)).clamp(-1.0, 1.0)
        else:
            image = torch.tanh(self.image(h))
        if self.flow_mask is None or self.prev_slice is None:
            return image, None, None
        fm = self.flow_mask(h)
        flow = fm[:, :2] * (x.shape[-1] / 32.0)  # a unit of the head is 1/32 of the crop
        mask = torch.sigmoid(fm[:, 2:3] - 2.0)  # starts mostly hallucinated (sigmoid(-2) = 0.12)
        warped = warp_by_flow(x[:, self.prev_slice], flow)
        return mask * warped + (1.0 - mask) * image, flow, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.parts(x)[0]


class PatchDiscriminator(nn.Module):
    """pix2pixHD's NLayer PatchGAN: ``layers`` stride-2 4x4 convs from ``channels`` (doubling, at most 8x), one
    stride-1 conv, a 1-channel score map. Returns the list of every layer's output."""

    def __init__(self, cin: int, channels: int, layers: int):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(cin, channels, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))]
        c = channels
        for i in range(1, layers):
            c2 = min(channels * 2 ** i, channels * 8)
            blocks.append(nn.Sequential(nn.Conv2d(c, c2, 4, 2, 1), nn.InstanceNorm2d(c2), nn.LeakyReLU(0.2, inplace=True)))
            c = c2
        c2 = min(c * 2, channels * 8)
        blocks.append(nn.Sequential(nn.Conv2d(c, c2, 4, 1, 1), nn.InstanceNorm2d(c2), nn.LeakyReLU(0.2, inplace=True)))
        blocks.append(nn.Sequential(nn.Conv2d(c2, 1, 4, 1, 1)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """PatchGANs over (condition, image) at full size, half size, ... (``d_scales``). ``forward(cond, image)``
    -> one feature list per scale."""

    def __init__(self, cfg: NeuralRendererConfig):
        super().__init__()
        cin = condition_channels(cfg) + 3
        self.nets = nn.ModuleList([PatchDiscriminator(cin, cfg.d_channels, cfg.d_layers) for _ in range(cfg.d_scales)])

    def forward(self, cond: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([cond, image], 1)
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(net(x))
        return out


class TemporalDiscriminator(nn.Module):
    """A PatchGAN over ``temporal_frames`` consecutive frames (B, K, 3, S, S), stacked as channels, at half size.
    Returns one feature list (a list of one, like :class:`MultiScaleDiscriminator`)."""

    def __init__(self, cfg: NeuralRendererConfig):
        super().__init__()
        self.k = cfg.temporal_frames
        self.net = PatchDiscriminator(3 * self.k, cfg.d_channels, max(cfg.d_layers - 1, 1))

    def forward(self, frames: torch.Tensor) -> list[list[torch.Tensor]]:
        b, k, c, h, w = frames.shape
        x = F.avg_pool2d(frames.reshape(b, k * c, h, w), 2)
        return [self.net(x)]
