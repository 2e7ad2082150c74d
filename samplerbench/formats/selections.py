"""The portable form of a selection: one JSON object per video (``samplerbench select``, ``--export-selections``).

A readable video gives ``{"video", "num_frames", "fps", "T", "K", "positions", "frame_indices", "times_s"}``:
``positions`` among the T pre-sampled frames, ``frame_indices`` in the video's numbering, ``times_s`` their
display-interval centres (:func:`~samplerbench.core.timeline.frame_times`), rounded to 0.1 ms. An unreadable video
gives ``{"video", "skipped": reason}``. In a video shorter than T the indices repeat (non-decreasing)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from samplerbench.core.timeline import frame_times, presample_indices


def video_selection(video: str, positions: Sequence[int], probed: tuple[int, float] | str, *, t: int) -> dict:
    """The object of one video: ``positions`` (among its ``t`` pre-sampled frames) of a video whose probe
    gave ``(frame count, fps)``, or ``{"video", "skipped"}`` when ``probed`` is the reason it is unreadable."""
    if isinstance(probed, str):
        return {"video": video, "skipped": probed}
    num_frames, fps = probed
    kept = np.asarray(positions, dtype=np.int64)
    indices = presample_indices(num_frames, t)[kept]
    return {"video": video, "num_frames": num_frames, "fps": fps, "T": t, "K": len(kept),
            "positions": kept.tolist(), "frame_indices": indices.tolist(),
            "times_s": [round(float(s), 4) for s in frame_times(indices, fps)]}


def dumps(selections: Iterable[dict]) -> str:
    """A JSON list with one object per line, so that line tools (grep, head) work on it too."""
    return "[\n" + ",\n".join(json.dumps(s) for s in selections) + "\n]"
