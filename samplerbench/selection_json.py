"""The portable form of a selection: one JSON object per video, printed by ``samplerbench select`` and written
by a run's ``--export-selections``, so that another tool can score the same frames.

A readable video gives ``{"video", "num_frames", "fps", "T", "K", "positions", "frame_indices", "times_s"}``:
``positions`` are the kept frames among the T pre-sampled ones (0..T-1), ``frame_indices`` the same frames
in the video's own numbering (:func:`~samplerbench.timeline.presample_indices`, segment centres) and
``times_s`` their timestamps (:func:`~samplerbench.timeline.frame_times`: the centre of each frame's display
interval at the decoder's average fps), rounded to 0.1 ms. An unreadable video gives ``{"video",
"skipped": reason}``. In a video shorter than T the pre-sampled frames repeat, so its indices are
non-decreasing rather than distinct.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from samplerbench.timeline import frame_times, presample_indices


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
