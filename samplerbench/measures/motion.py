"""Motion between adjacent video frames, as MGSampler measures it: 1 − SSIM of the two grayscale frames.

Follows ``generate_img_diff.py`` of MCG-NJU/MGSampler: OpenCV's integer-rounded ``RGB2GRAY``, then
scikit-image's uint8 SSIM defaults (7 × 7 uniform window, K1 = 0.01, K2 = 0.03, sample covariances, mean over
pixels at least 3 from the border). Frames smaller than 7 pixels use the largest odd window that fits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, what OpenCV's RGB2GRAY uses
WINDOW = 7
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0
# Multiply-adds per pixel of one pair (fvcore's convention, for the GFLOPs column): two grayscale conversions
# (2 × 3), the three products x², y², xy (3), five 7 × 7 box means (5 × 49) and the SSIM formula (≈ 12).
OPS_PER_PIXEL = 6 + 3 + 5 * WINDOW * WINDOW + 12


def gray(frames: Tensor) -> Tensor:
    """uint8 ``[..., 3, H, W]`` RGB → float ``[..., H, W]`` integer grey levels (OpenCV's ``RGB2GRAY``)."""
    weights = torch.tensor(GRAY_WEIGHTS, dtype=torch.float64, device=frames.device)
    return torch.einsum("...chw,c->...hw", frames.double(), weights).round()


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Mean structural similarity of grey images ``a`` and ``b`` (``[N, H, W]``, grey levels 0–255): ``[N]``."""
    win = min(WINDOW, a.shape[-2], a.shape[-1])
    win -= 1 - win % 2  # odd
    pixels = win * win
    cov_norm = pixels / (pixels - 1) if pixels > 1 else 1.0

    def mean(x: Tensor) -> Tensor:
        return F.avg_pool2d(x[:, None], win, stride=1)[:, 0]  # the valid region: the cropped mean's support

    ux, uy = mean(a), mean(b)
    vx = cov_norm * (mean(a * a) - ux * ux)
    vy = cov_norm * (mean(b * b) - uy * uy)
    vxy = cov_norm * (mean(a * b) - ux * uy)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1))


def pair_motion(first: Tensor, second: Tensor) -> Tensor:
    """1 − SSIM between uint8 RGB frames ``first[i]`` and ``second[i]`` (``[N, 3, H, W]`` each): ``[N]`` float32,
    0 for identical frames, near 1 for unrelated ones."""
    if not len(first):
        return torch.zeros(0)
    return (1.0 - ssim(gray(first), gray(second))).float()


def successor_pairs(indices: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The adjacent frames whose difference is the motion at each pre-sampled index: ``(i, i + 1)``, or
    ``(i - 1, i)`` for the video's last frame (it has no successor); ``(0, 0)`` in a one-frame video, whose
    motion is 0."""
    indices = np.asarray(indices, dtype=np.int64)
    first = np.clip(np.minimum(indices, num_frames - 2), 0, None)
    second = np.minimum(first + 1, num_frames - 1)
    return first, second
