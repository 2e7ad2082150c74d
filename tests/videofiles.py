"""Small video files written by the tests themselves: any container/codec PyAV can encode, plus broken ones."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from torchvision.io import encode_jpeg

RED, BLUE = (220, 30, 30), (30, 30, 220)
FPS = 4


def clip_image(colour: tuple[int, int, int] = RED, *, width: int = 64, height: int = 48) -> np.ndarray:
    """The frame :func:`write_clip` repeats: top half ``colour``, bottom half black, ``[H, W, 3]`` uint8."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2] = colour
    return image


def write_frames(folder: Path, images: np.ndarray, *, template: str = "img_{:05d}.jpg", start: int = 1) -> Path:
    """A frame folder (mmaction2's rawframes): ``images`` (``[N, H, W, 3]`` uint8) as JPEGs (quality 95) named
    ``template.format(start + i)``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        data = encode_jpeg(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous(), quality=95)
        (folder / template.format(start + i)).write_bytes(data.numpy().tobytes())
    return folder


def write_clip(path: Path, frames: int = 12, *, colour: tuple[int, int, int] = RED, codec: str = "libx264",
               width: int = 64, height: int = 48, rotation: int = 0) -> Path:
    """``frames`` frames whose top half is ``colour`` and bottom half black, at :data:`FPS`; the container
    follows the suffix. ``rotation`` (degrees counter-clockwise) is written as display-matrix side data, the
    way phones store sideways videos."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        image = clip_image(colour, width=width, height=height)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path, codec: str = "aac") -> Path:
    """One second of silence and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000)
        stream.layout = "mono"
        for i in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_truncated(path: Path, source: Path, fraction: float = 0.3) -> Path:
    """The first ``fraction`` of ``source``'s bytes: a download cut short."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
