"""Which frames of a video a run reads, and when they are shown: pure rules on frame counts and rates.

The decoder, the protocol card and the exported selections all follow these, so a frame index or a
timestamp means the same thing everywhere."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# The two rules in words, for a run's protocol card.
FRAME_RULE = ("T frames per video at the centres of T equal segments of its N frames (index floor((2i+1)N/2T); a "
              "video shorter than T repeats frames; training views draw a random frame per segment instead)")
TIME_RULE = ("a frame's timestamp is (index + 0.5) / fps, the centre of its display interval, with fps the "
             "container's average frame rate as the decoder reports it (decord; PyAV's average rate as fallback): a "
             "constant frame rate is assumed, so in a variable-frame-rate video timestamps are approximate")


def presample_indices(num_frames: int, t: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """``t`` frame indices, uniformly pre-sampled: the centre (``rng is None``) or a random point (training,
    temporal random shift) of each of ``t`` equal segments of ``[0, num_frames)``.

    A video shorter than ``t`` repeats its frames in place (3 frames, t=8: ``0 0 0 1 1 2 2 2``), so indices stay
    non-decreasing."""
    if num_frames < 1 or t < 1:
        raise ValueError(f"need num_frames >= 1 and t >= 1, got {num_frames}, {t}")
    i = np.arange(t, dtype=np.int64)
    if rng is None:
        return ((2 * i + 1) * num_frames) // (2 * t)  # exact integer floor of the segment centre
    offsets = rng.random(t)
    idx = np.floor((i + offsets) * num_frames / t).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def frame_times(indices: np.ndarray, fps: float) -> np.ndarray:
    """Timestamp of each frame index, in seconds, at the centre of its display interval (so a frame is salient
    when most of its interval is annotated)."""
    return (np.asarray(indices, dtype=np.float64) + 0.5) / fps


def salient_mask(segments: Iterable[tuple[float, float]], times_s: np.ndarray) -> np.ndarray:
    """Whether each timestamp lies inside any half-open segment ``[start, end)``."""
    times = np.asarray(times_s, dtype=np.float64)
    seg = np.asarray(list(segments), dtype=np.float64).reshape(-1, 2)
    inside = (times[..., None] >= seg[:, 0]) & (times[..., None] < seg[:, 1])
    return inside.any(axis=-1)
