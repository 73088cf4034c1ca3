"""Yosinski et al. (2015) regularisers for activation maximisation, and their four published settings.

Each step is x <- r(x + lr * grad); r applies, in this order, L2 decay, a Gaussian blur every N steps,
clipping of pixels with a small norm and clipping of pixels with a small contribution. "Clipping" sets a
pixel to zero, which in a normalised input space is the data's mean colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

HyperSet = Literal["yosinski1", "yosinski2", "yosinski3", "yosinski4"]


@dataclass(frozen=True)
class Hyper:
    decay: float  # theta_decay: x <- (1 - decay) x
    blur_width: float  # theta_b_width: Gaussian sigma in pixels (0: off)
    blur_every: int  # theta_b_every: blur every this many steps
    norm_pct: float  # theta_n_pct: zero pixels whose norm is below this percentile
    contrib_pct: float  # theta_c_pct: zero pixels whose contribution is below this percentile


# Table 1 of Yosinski, Clune, Nguyen, Fuchs & Lipson, "Understanding Neural Networks Through Deep
# Visualization" (ICML DL workshop 2015): four combinations that each give recognisable images.
HYPER_SETS: dict[str, Hyper] = {
    "yosinski1": Hyper(decay=0.0, blur_width=0.5, blur_every=4, norm_pct=50.0, contrib_pct=0.0),
    "yosinski2": Hyper(decay=0.3, blur_width=0.0, blur_every=0, norm_pct=20.0, contrib_pct=0.0),
    "yosinski3": Hyper(decay=0.0001, blur_width=1.0, blur_every=4, norm_pct=0.0, contrib_pct=0.0),
    "yosinski4": Hyper(decay=0.0, blur_width=0.5, blur_every=4, norm_pct=0.0, contrib_pct=90.0),
}


def l2_decay(x: torch.Tensor, decay: float) -> torch.Tensor:
    return x * (1.0 - decay) if decay else x


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images, channel by channel, with reflected edges."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma).to(x.device, x.dtype)
    r = len(k) // 2
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _zero_below(x: torch.Tensor, score: torch.Tensor, pct: float) -> torch.Tensor:
    """Zero the pixels (positions of `score`, shape (N, *spatial)) below each image's `pct` percentile."""
    if pct <= 0:
        return x
    flat = score.flatten(1)
    cut = torch.quantile(flat, pct / 100.0, dim=1, keepdim=True)
    keep = (flat >= cut).view(score.shape).unsqueeze(1)
    return x * keep


def clip_pixel_norm(x: torch.Tensor, pct: float) -> torch.Tensor:
    """Zero the pixels whose norm across channels is among the weakest `pct` percent of the image."""
    return _zero_below(x, x.norm(dim=1), pct)


def clip_contribution(x: torch.Tensor, grad: torch.Tensor, pct: float) -> torch.Tensor:
    """Zero the pixels whose contribution |sum_c x_c * grad_c| (a first-order estimate of how much the
    pixel adds to the activation) is among the weakest `pct` percent."""
    return _zero_below(x, (x * grad).sum(dim=1).abs(), pct)


def regularise(x: torch.Tensor, grad: torch.Tensor, hyper: Hyper, step: int) -> torch.Tensor:
    """Apply r_theta to (N, C, *spatial) inputs; vectors are (N, 1, F) so each feature counts as a pixel."""
    x = l2_decay(x, hyper.decay)
    if x.dim() == 4 and hyper.blur_width > 0 and hyper.blur_every > 0 and step % hyper.blur_every == 0:
        x = gaussian_blur(x, hyper.blur_width)
    x = clip_pixel_norm(x, hyper.norm_pct)
    return clip_contribution(x, grad, hyper.contrib_pct)
