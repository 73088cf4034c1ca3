"""Image parameterisations and robustness transforms for activation maximisation (after Olah et al. 2017).

The Fourier parameterisation optimises a spectrum scaled by 1/frequency, so every frequency learns at
a similar rate; colour channels are decorrelated with the square root of a natural-image colour
covariance; a sigmoid keeps pixels in [0, 1] (the display space), which `InputSpace` maps to the
model's input space. Random jitter, scale and rotation each step keep the image from exploiting
pixel-exact patterns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Square root of the colour correlation of ImageNet images (as used by lucid/lucent).
_COLOUR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOUR_SQRT = _COLOUR_SQRT / _COLOUR_SQRT.norm(dim=0).max()


@dataclass(frozen=True)
class InputSpace:
    """How display values in [0, 1] map to model inputs: per-channel (x - mean) / std where known, else
    linearly onto [lo, hi]; `lo`/`hi` bound the model-space values (from the data or the config)."""

    lo: float
    hi: float
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def _ms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape),
                torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape))

    def to_model(self, display: torch.Tensor) -> torch.Tensor:
        if self.mean is not None and self.std is not None and display.dim() == 4:
            mean, std = self._ms(display)
            return (display - mean) / std
        return self.lo + display * (self.hi - self.lo)

    def to_display(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is not None and self.std is not None and x.dim() == 4:
            mean, std = self._ms(x)
            return (x * std + mean).clamp(0, 1)
        span = self.hi - self.lo if self.hi > self.lo else 1.0
        return ((x - self.lo) / span).clamp(0, 1)


class FourierImage:
    """(N, C, H, W) images in [0, 1] from a 1/f-scaled spectrum (plus colour decorrelation for RGB)."""

    def __init__(self, n: int, c: int, h: int, w: int, generator: torch.Generator, sd: float = 0.01,
                 decay_power: float = 1.0, device: torch.device | str = "cpu") -> None:
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)
        self.scale = (1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power).to(device)
        self.shape = (h, w)
        self.c = c
        self.spectrum = (torch.randn((n, c, h, w // 2 + 1, 2), generator=generator) * sd).to(device).requires_grad_(True)

    def params(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        img = torch.fft.irfft2(spec, s=self.shape, norm="ortho") / 4.0
        if self.c == 3:
            img = torch.einsum("nchw,dc->ndhw", img, _COLOUR_SQRT.to(img.device))
        return torch.sigmoid(img)


def random_affine(x: torch.Tensor, generator: torch.Generator, jitter: float, scale: float,
                  rotate_deg: float) -> torch.Tensor:
    """Shift by up to `jitter` pixels, scale by 1 ± `scale`, rotate by ± `rotate_deg`, per image, in one
    resampling (reflected edges)."""
    n, _, h, w = x.shape
    u = (torch.rand((n, 4), generator=generator) * 2 - 1).to(x.device)
    angle = u[:, 0] * math.radians(rotate_deg)
    s = 1.0 + u[:, 1] * scale
    tx, ty = u[:, 2] * 2 * jitter / w, u[:, 3] * 2 * jitter / h
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
