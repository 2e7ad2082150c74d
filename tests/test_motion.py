"""MGSampler's motion: 1 − SSIM of adjacent frames (by hand and against scikit-image's algorithm), the
successor of each pre-sampled frame, and a real clip with a known motion burst decoded with its successors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from samplerbench.core.timeline import presample_indices
from samplerbench.datasets.base import VideoRecord
from samplerbench.measures.motion import gray, pair_motion, ssim, successor_pairs
from samplerbench.stages.decode import decode_motion, motion_stream, view_indices


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's ``structural_similarity`` for uint8 grey images with its defaults, written out with
    scipy: 7 × 7 uniform filter, K1 .01, K2 .03, range 255, sample covariances, mean over the uncropped part."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    norm = 49 / 48
    ux, uy = uniform_filter(a, 7), uniform_filter(b, 7)
    vx = norm * (uniform_filter(a * a, 7) - ux * ux)
    vy = norm * (uniform_filter(b * b, 7) - uy * uy)
    vxy = norm * (uniform_filter(a * b, 7) - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s[3:-3, 3:-3].mean())


def test_ssim_by_hand_and_as_scikit_image_computes_it():
    black, white = torch.zeros(1, 10, 12, dtype=torch.float64), torch.full((1, 10, 12), 255.0, dtype=torch.float64)
    assert ssim(black, black).item() == pytest.approx(1.0)
    # flat images: SSIM = (0 + C1)(0 + C2) / ((255² + C1)(0 + C2)) with C1 = (.01·255)² = 6.5025
    assert ssim(black, white).item() == pytest.approx(6.5025 / (255**2 + 6.5025))
    gen = np.random.default_rng(0)
    a = gen.integers(0, 256, (20, 24))
    b = np.clip(a + gen.integers(-40, 41, (20, 24)), 0, 255)
    assert ssim(torch.tensor(a[None], dtype=torch.float64), torch.tensor(b[None], dtype=torch.float64)).item() == \
        pytest.approx(skimage_ssim(a, b), abs=1e-12)


def test_pair_motion_of_rgb_frames():
    red = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    red[:, 0] = 200
    assert gray(red[:1]).unique().tolist() == [60.0]  # round(.299 · 200) = 59.8 -> 60, as OpenCV's uint8 output
    blue = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    blue[:, 2] = 200  # grey 23
    motion = pair_motion(red, torch.stack([red[0], blue[0]]))
    c1 = 6.5025
    assert motion[0].item() == pytest.approx(0.0, abs=1e-7)
    assert motion[1].item() == pytest.approx(1 - (2 * 60 * 23 + c1) / (60**2 + 23**2 + c1), rel=1e-6)


def test_successor_of_each_presampled_frame():
    first, second = successor_pairs(np.array([0, 3, 4, 4]), 5)
    assert first.tolist() == [0, 3, 3, 3] and second.tolist() == [1, 4, 4, 4]  # frame 4 is the last: (3, 4)
    first, second = successor_pairs(np.array([0, 0]), 1)
    assert first.tolist() == [0, 0] and second.tolist() == [0, 0]  # one frame: no motion


def write_cut(path, frames: int, cut: int):
    """``frames`` frames of 64×48 px: a grey gradient, inverted from frame ``cut`` on (one burst of motion)."""
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"qp": "0"}  # lossless-ish: static frames decode identical
        for i in range(frames):
            image = np.repeat((255 - ramp if i >= cut else ramp)[..., None], 3, axis=2)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_motion_is_between_each_presampled_frame_and_its_successor(tmp_path):
    """24 frames, T = 8: the segment centres are 1, 4, 7, 10, ...; the cut between frames 7 and 8 is seen at
    position 2 (frames 7 and 8), not at position 3, where a difference between pre-sampled frames (7 vs 10)
    would put it."""
    path = write_cut(tmp_path / "cut.mp4", 24, cut=8)
    indices = presample_indices(24, 8)
    assert indices.tolist() == [1, 4, 7, 10, 13, 16, 19, 22]
    motion = decode_motion(path, indices, 24, short_side=48, crop=48)
    assert motion.shape == (8,) and motion.dtype == torch.float32
    assert motion[2] > 0.5 and torch.cat((motion[:2], motion[3:])).abs().max() < 0.02
    record = VideoRecord(video_id="cut", path=path, labels=(0,), subset="train")
    (_, test_rows), = motion_stream([record], t=8, short_side=48, crop=48, workers=1)
    assert torch.allclose(torch.as_tensor(test_rows), motion[None])
    (_, train_rows), = motion_stream([record], t=8, short_side=48, crop=48, views=2, seed=3, train=True, workers=1)
    views = view_indices(24, t=8, views=2, seed=3, video_id="cut", train=True)  # the frames decode_stream decodes
    assert train_rows.shape == (2, 8)
    assert torch.allclose(torch.as_tensor(train_rows).flatten(), decode_motion(path, views.reshape(-1), 24,
                                                                               short_side=48, crop=48))
