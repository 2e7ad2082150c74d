"""Decode stage: T uniformly pre-sampled frames per video (:mod:`samplerbench.core.timeline`), resized and
centre-cropped.

decord can abort the whole process on a corrupt file, so every file is first probed in an isolated process
pool (a dead worker costs one video, never the run); readable files are decoded by DataLoader workers
(:mod:`samplerbench.core.workers`). :func:`decode_stream` yields videos one at a time for
:mod:`samplerbench.formats.store`;
unreadable videos are reported as ``(video_id, path, reason)``. decord first, PyAV as fallback (or, with
``decoder="torchcodec"``, torchcodec on the run's device first); frame folders take the same path, their JPEGs
decoded on the run's device."""

from __future__ import annotations

import dataclasses
import errno
import functools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import av
import decord
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as TF

from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import progress
from samplerbench.core.timeline import frame_times, presample_indices, salient_mask
from samplerbench.core.workers import context, init_worker
from samplerbench.datasets.base import MISSING, FrameFolder, VideoRecord
from samplerbench.datasets.layout import count_frames
from samplerbench.measures.motion import pair_motion, successor_pairs

CRASHED = "decoder crashed"
# Frames decoded by two decoders (or through a JPEG at quality 95), resized and cropped alike, differ by rounding,
# not by a frame: their mean absolute difference per pixel stays below this (scripts/compare_decoders.py), while
# neighbouring frames of a video differ by far more.
PIXEL_TOLERANCE = 3.0
Source = Path | FrameFolder  # what a record's frames are read from: a video file, or a folder of JPEGs


class DecodeError(Exception):
    """Neither decord nor PyAV could produce the requested frames of ``path``."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclasses.dataclass(kw_only=True)
class DecodedSplit:
    """The decoded frames of one split, one row per (video, view).

    Attributes:
        frames: uint8 ``[N, T, 3, crop, crop]``.
        video_ids: one per row; a training video with ``views > 1`` fills ``views`` consecutive rows.
        salient: bool ``[N, T]``, whether each frame's timestamp lies inside an annotated segment.
        labels: class indices, one tuple per row.
        skipped: ``(video_id, path, reason)`` for every unreadable video, in record order.
    """

    frames: torch.Tensor
    video_ids: list[str]
    salient: torch.Tensor
    labels: list[tuple[int, ...]]
    skipped: list[tuple[str, str, str]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecodedVideo:
    """One readable video's rows: ``frames`` uint8 ``[views, T, 3, crop, crop]``; ``times_s`` and ``salient``
    ``[views, T]``."""

    frames: np.ndarray
    times_s: np.ndarray
    salient: np.ndarray


# ---------------------------------------------------------------------------------------------- pure helpers


def resize_crop(frames: torch.Tensor, *, short_side: int, crop: int) -> torch.Tensor:
    """Resize the shorter side to ``short_side`` (antialiased), then centre-crop to ``crop × crop``.

    Accepts ``[N, H, W, 3]`` (decoders' layout) or ``[N, 3, H, W]``; channels-last is assumed when the last
    dimension is 3 and the second is not. Returns uint8 ``[N, 3, crop, crop]``."""
    if frames.shape[-1] == 3 and frames.shape[1] != 3:
        frames = frames.permute(0, 3, 1, 2)
    out = TF.resize(frames.contiguous(), size=[short_side], antialias=True)
    return TF.center_crop(out, [crop, crop]).contiguous()


def video_rng(seed: int, video_id: str) -> np.random.Generator:
    """A generator that depends only on the run seed and the video id (crc32: stable across processes)."""
    return np.random.default_rng([seed, zlib.crc32(video_id.encode())])


# ---------------------------------------------------------------------------------------------- one file


def _decord_message(err: BaseException) -> str:
    """decord's errors start with ``[hh:mm:ss] /path/file.cc:123:`` and a ``Check failed`` preamble."""
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    msg = re.sub(r"^\[[\d:]+\]\s*\S+:\d+:\s*", "", msg)
    return re.sub(r"^Check failed:.*?ERROR\s*", "", msg)


def _av_message(err: BaseException) -> str:
    """FFmpeg's own wording ("Invalid data found when processing input") without errno and path."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _av_probe(path: Path) -> tuple[int, float] | str:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            n = sum(1 for _ in container.decode(stream))
            rate = stream.average_rate or stream.guessed_rate
            return n, float(rate) if rate else 0.0
    except Exception as e:  # PyAV raises many error types; any of them means "unreadable"
        return _av_message(e)


def _probe_folder(folder: FrameFolder) -> tuple[int, float] | str:
    """A frame folder's ``(frame count, fps)`` as its record gives them, or why it cannot be read (missing,
    or no file named as the template says). Each frame file is checked when it is decoded."""
    if not folder.path.is_dir():
        return "missing frame folder"
    if folder.total_frames < 1 or not count_frames(folder.path, folder.template):
        return f"empty frame folder (no {folder.template!r} file)"
    return folder.total_frames, folder.fps


def _not_a_video_file(path: Path) -> str | None:
    """Why ``path`` cannot be a video file, in its true words (missing, a link loop, a folder, a FIFO, empty), or
    ``None`` for a regular file with bytes in it."""
    if not path.exists():
        if not path.is_symlink():
            return MISSING
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop so
            return "symbolic-link loop"
        except OSError as exc:
            return "symbolic-link loop" if exc.errno == errno.ELOOP else "symbolic link to a missing file"
        return "symbolic link to a missing file"
    if path.is_dir():
        return "a folder, not a video file"
    if not path.is_file():
        return "not a regular file (a FIFO, socket or device)"
    if path.stat().st_size == 0:
        return "zero-byte file"
    return None


def probe(source: Source | str) -> tuple[int, float] | str:
    """``(frame count, fps)`` of a video or frame folder, or a human-readable reason why it cannot be read.

    Opens the file in *this* process: call it through :func:`probe_many` unless the file is known good."""
    if isinstance(source, FrameFolder):
        return _probe_folder(source)
    path = Path(source)
    kind = _not_a_video_file(path)
    if kind:
        return kind
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        n, fps = len(vr), float(vr.get_avg_fps())
    except Exception as e:  # decord raises DECORDError or RuntimeError for unreadable input
        message = _decord_message(e)
        fallback = _av_probe(path)  # decord finds no video stream where it has no frame: PyAV counts them
        if isinstance(fallback, str):
            return "no video stream" if "video stream" in message else \
                f"corrupt or unreadable: {message} (PyAV: {fallback})"
        n, fps = fallback
    if n <= 0:
        return "0 frames"
    if not fps > 0:
        return "no frame rate in the container"
    return n, fps


def upright(frame: av.VideoFrame) -> np.ndarray:
    """``frame`` as ``[H, W, 3]`` RGB, turned as the container's display matrix says (phone videos are often
    stored sideways with a rotation flag). decord applies the flag itself; PyAV reports it in
    ``frame.rotation`` (degrees counter-clockwise), so the fallback turns the pixels to match."""
    return np.rot90(frame.to_ndarray(format="rgb24"), k=round(frame.rotation / 90) % 4)


def _decode_av(path: Path, wanted: np.ndarray) -> np.ndarray:
    """Sequential PyAV decode of the (sorted, unique) ``wanted`` indices, ``[n, H, W, 3]`` uint8, upright."""
    keep = set(wanted.tolist())
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in keep:
                frames[i] = upright(frame)
            if i >= wanted[-1]:
                break
    missing = keep - frames.keys()
    if missing:
        raise DecodeError(path, f"PyAV decoded only frames < {min(missing)} of {wanted[-1] + 1} wanted")
    return np.stack([frames[i] for i in wanted.tolist()])


def _jpeg(data: torch.Tensor, name: str, path: Path, device: str) -> torch.Tensor:
    """One JPEG decoded alone, to name the corrupt file of a batch that failed."""
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError as e:  # torchvision reports libjpeg's and nvJPEG's errors as RuntimeError
        message = re.sub(r"^.*?\.(?:cpp|cu):\d+,\s*", "", str(e).strip()) or type(e).__name__
        raise DecodeError(path, f"corrupt JPEG {name}: {message}") from None


def decode_frames(folder: FrameFolder, wanted: np.ndarray, *, short_side: int, crop: int,
                  device: str = "cpu") -> torch.Tensor:
    """Frames ``wanted`` (sorted, unique, 0-based) of a frame folder, resized and cropped as :func:`resize_crop`
    does: uint8 ``[len(wanted), 3, crop, crop]`` on the CPU. The JPEGs are decoded in one batch on ``device``;
    :class:`DecodeError` names a missing or corrupt frame file."""
    data = []
    for i in wanted.tolist():
        file = folder.frame_path(i)
        try:
            data.append(torch.frombuffer(bytearray(file.read_bytes()), dtype=torch.uint8))
        except FileNotFoundError:
            raise DecodeError(folder.path, f"missing frame {file.name}") from None
        except OSError as e:
            raise DecodeError(folder.path, f"cannot read frame {file.name}: {e.strerror or e}") from None
        if not len(data[-1]):
            raise DecodeError(folder.path, f"corrupt JPEG {file.name}: zero-byte file")
    try:
        images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        names = [folder.frame_path(i).name for i in wanted.tolist()]
        images = [_jpeg(d, name, folder.path, device) for d, name in zip(data, names, strict=True)]
    if len({tuple(im.shape) for im in images}) == 1:
        out = resize_crop(torch.stack(images), short_side=short_side, crop=crop)
    else:  # frames of different sizes (an unusual folder): resized one at a time
        out = torch.cat([resize_crop(im[None], short_side=short_side, crop=crop) for im in images])
    return out.cpu()


def torchcodec_frames(path: Path, wanted: np.ndarray, *, device: str) -> torch.Tensor:
    """Frames ``wanted`` (sorted, unique) of the video ``path`` decoded by torchcodec on ``device`` (NVDEC on CUDA):
    uint8 ``[n, 3, H, W]`` on ``device``, upright (torchcodec applies the rotation flag, as decord does). Raises
    whatever torchcodec raises for a file it cannot read; :class:`UserError` when torchcodec is not installed."""
    try:
        from torchcodec.decoders import VideoDecoder  # optional: pip install torchcodec, and FFmpeg 4-8 libraries
    except (ImportError, OSError, RuntimeError) as e:  # torchcodec raises RuntimeError when FFmpeg cannot load
        raise UserError(f"--decoder torchcodec: torchcodec cannot be loaded ({str(e).splitlines()[0][:160]}); "
                        f"pip install torchcodec and install FFmpeg's libraries (4 to 8), or use --decoder cpu"
                        ) from None
    decoder = VideoDecoder(str(path), device=device, seek_mode="exact", num_ffmpeg_threads=1)
    return decoder.get_frames_at(wanted.tolist()).data


def _cpu_frames(path: Path, wanted: np.ndarray) -> torch.Tensor:
    """Frames ``wanted`` (sorted, unique) of ``path`` by decord, then PyAV: uint8 ``[n, H, W, 3]`` on the CPU."""
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        return torch.from_numpy(vr.get_batch(wanted.tolist()).asnumpy())
    except Exception as decord_err:  # decord raises DECORDError or RuntimeError for unreadable input
        try:
            return torch.from_numpy(_decode_av(path, wanted))
        except Exception as av_err:  # idem for PyAV
            reason = f"corrupt or unreadable: {_decord_message(decord_err)} (PyAV: {_av_message(av_err)})"
            raise DecodeError(path, reason) from av_err


def decode_clip(source: Source | str, indices: np.ndarray, *, short_side: int, crop: int,
                device: str = "cpu", decoder: str = "cpu") -> torch.Tensor:
    """Frames ``indices`` (any order, repeats allowed) of ``source`` as uint8 ``[len(indices), 3, crop, crop]`` on the
    CPU. A video is decoded by ``decoder``: ``cpu`` (decord, then PyAV; :class:`DecodeError` when both fail) or
    ``torchcodec`` on ``device``, resized and cropped there, with the CPU decoders for a file it cannot read; a frame
    folder by :func:`decode_frames` on ``device``. The frames of ``indices`` are the same whatever decodes them;
    their pixels differ by rounding (see :data:`~samplerbench.config.DECODERS`)."""
    unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    if isinstance(source, FrameFolder):
        out = decode_frames(source, unique, short_side=short_side, crop=crop, device=device)
        return out[torch.from_numpy(inverse.reshape(-1))]
    path, raw = Path(source), None
    if decoder == "torchcodec":
        try:
            raw = torchcodec_frames(path, unique, device=device)
        except UserError:
            raise
        except Exception:  # torchcodec's RuntimeError / ValueError for a file it cannot read: the CPU decoders try
            raw = None
    if raw is None:
        raw = _cpu_frames(path, unique)
    out = resize_crop(raw, short_side=short_side, crop=crop).cpu()
    return out[torch.from_numpy(inverse.reshape(-1))]


# ---------------------------------------------------------------------------------------------- isolation


def _make_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=context(), initializer=init_worker)


def _run_isolated(fn: Callable[..., Any], jobs: Sequence[tuple], *, workers: int, desc: str) -> list[Any]:
    """``[fn(*job) for job in jobs]``, each call in a worker process; a call whose worker died yields :data:`CRASHED`.
    After a death the unfinished calls rerun one at a time, so a second death points at exactly one file."""
    results: list[Any] = [None] * len(jobs)
    done = [False] * len(jobs)
    with progress(total=len(jobs), desc=desc, unit="video") as bar:
        with _make_pool(workers) as pool:
            futures: dict[Future, int] = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                try:
                    results[futures[fut]] = fut.result()
                except BrokenProcessPool:
                    continue
                done[futures[fut]] = True
                bar.update()
        single: ProcessPoolExecutor | None = None
        try:
            for i in (i for i, ok in enumerate(done) if not ok):
                single = single or _make_pool(1)
                try:
                    results[i] = single.submit(fn, *jobs[i]).result()
                except BrokenProcessPool:
                    results[i] = CRASHED
                    single.shutdown()
                    single = None
                bar.update()
        finally:
            if single is not None:
                single.shutdown()
    return results


def probe_many(paths: Iterable[Source | str], *, workers: int) -> dict[Source, tuple[int, float] | str]:
    """:func:`probe` of every video file or frame folder, each in one of ``workers`` worker processes, so a file
    that crashes the decoder is reported as :data:`CRASHED` instead of ending the caller."""
    paths = [p if isinstance(p, FrameFolder) else Path(p) for p in paths]
    results = _run_isolated(probe, [(p,) for p in paths], workers=workers, desc="probe")
    return dict(zip(paths, results, strict=True))


class _Jobs(Dataset):
    """``fn(*jobs[i])`` as a map-style dataset, so a DataLoader's workers run the calls."""

    def __init__(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> None:
        self.fn = fn
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> Any:
        return self.fn(*self.jobs[i])


def _stream_loader(fn: Callable[..., Any], jobs: Sequence[tuple], *, workers: int, desc: str) -> Iterator[Any]:
    """``fn(*job) for job in jobs`` through DataLoader workers, in order (numpy arrays come back as tensors); if a
    worker dies, the undelivered jobs go through :func:`_run_isolated`."""
    loader = DataLoader(_Jobs(fn, jobs), batch_size=None, num_workers=workers, multiprocessing_context=context(),
                        worker_init_fn=init_worker)
    delivered = 0
    try:
        for item in progress(loader, total=len(jobs), desc=desc, unit="video"):
            delivered += 1
            yield item
    except RuntimeError as err:  # the loader's way of saying "DataLoader worker (pid ...) exited unexpectedly"
        if "exited unexpectedly" not in str(err):
            raise
    if delivered < len(jobs):
        yield from _run_isolated(fn, jobs[delivered:], workers=workers, desc=f"{desc} (isolated)")


def view_indices(num_frames: int, *, t: int, views: int, seed: int, video_id: str, train: bool) -> np.ndarray:
    """``[views, t]`` pre-sampled frame indices of one video: segment centres at test (one view), ``views``
    temporal-random-shift draws from :func:`video_rng` in training."""
    rng = video_rng(seed, video_id) if train else None
    return np.stack([presample_indices(num_frames, t, rng=rng) for _ in range(views if train else 1)])


def _decode_video(
    source: Source, video_id: str, num_frames: int, fps: float, *, t: int, short_side: int, crop: int, views: int,
    seed: int, train: bool, device: str, decoder: str = "cpu",
) -> tuple[np.ndarray, np.ndarray] | str:
    """Choose indices and decode one probed video (runs in a worker): ``(frames [V,T,3,c,c], times [V,T])``
    or the reason it was skipped."""
    indices = view_indices(num_frames, t=t, views=views, seed=seed, video_id=video_id, train=train)
    try:
        frames = decode_clip(source, indices.reshape(-1), short_side=short_side, crop=crop, device=device,
                             decoder=decoder)
    except DecodeError as e:
        return e.reason
    return frames.reshape(len(indices), t, *frames.shape[1:]).numpy(), frame_times(indices, fps)


def decode_motion(source: Source | str, indices: np.ndarray, num_frames: int, *, short_side: int,
                  crop: int, device: str = "cpu", decoder: str = "cpu") -> torch.Tensor:
    """MGSampler's motion at each of ``indices``: 1 − SSIM between that frame and its successor in the video
    (:func:`~samplerbench.measures.motion.successor_pairs`), decoded, resized and cropped as :func:`decode_clip` does.
    ``[len(indices)]`` float32; :class:`DecodeError` when the frames cannot be read."""
    first, second = successor_pairs(indices, num_frames)
    frames = decode_clip(source, np.concatenate([first, second]), short_side=short_side, crop=crop, device=device,
                         decoder=decoder)
    return pair_motion(frames[: len(first)], frames[len(first) :])


def _motion_video(
    source: Source, video_id: str, num_frames: int, fps: float, *, t: int, short_side: int, crop: int, views: int,
    seed: int, train: bool, device: str, decoder: str = "cpu",
) -> np.ndarray | str:
    """The motion ``[V, T]`` of one probed video at the indices :func:`_decode_video` decodes (runs in a
    worker), or the reason it could not be read."""
    indices = view_indices(num_frames, t=t, views=views, seed=seed, video_id=video_id, train=train)
    try:
        motion = decode_motion(source, indices.reshape(-1), num_frames, short_side=short_side, crop=crop,
                               device=device, decoder=decoder)
    except DecodeError as e:
        return e.reason
    return motion.view(indices.shape).numpy()


def _probed_stream(
    records: Sequence[VideoRecord], job: Callable[..., Any], *, workers: int,
    probed: Mapping[Source, tuple[int, float] | str] | None, desc: str,
) -> Iterator[tuple[VideoRecord, Any]]:
    """``(record, job(source, video_id, frame count, fps))`` in record order as results arrive, or ``(record,
    reason)`` for a file that does not probe. Every file is probed in the isolated pool (unless ``probed``
    holds :func:`probe_many`'s answer already), then the readable ones go to ``workers`` DataLoader workers."""
    infos = probed if probed is not None else probe_many([r.source for r in records], workers=workers)
    readable = [r for r in records if not isinstance(infos[r.source], str)]
    results = _stream_loader(job, [(r.source, r.video_id, *infos[r.source]) for r in readable], workers=workers,
                             desc=desc)
    for record in records:
        info = infos[record.source]
        yield record, info if isinstance(info, str) else next(results)


def decode_stream(
    records: Sequence[VideoRecord],
    *,
    t: int,
    short_side: int,
    crop: int,
    views: int = 1,
    seed: int = 0,
    train: bool = False,
    workers: int,
    probed: Mapping[Source, tuple[int, float] | str] | None = None,
    device: str = "cpu",
    decoder: str = "cpu",
) -> Iterator[tuple[VideoRecord, DecodedVideo | str]]:
    """Decode ``t`` pre-sampled frames of every record, yielding ``(record, result)`` in record order (``result``
    is the reason when unreadable). Test: one view of segment centres; train: ``views`` shifts seeded by
    ``(seed, video_id)``. ``workers``: the processes that probe and decode (a run's: its config's ``workers``);
    ``probed``: :func:`probe_many`'s answer, if known; ``device``: for frame folders' JPEGs and ``decoder``
    (:func:`decode_clip`). The indices come from :func:`view_indices` whatever decodes them."""
    if crop > short_side:
        raise UserError(f"the crop ({crop} px) must not exceed the resized shorter side ({short_side} px)")
    job = functools.partial(_decode_video, t=t, short_side=short_side, crop=crop, views=views, seed=seed, train=train,
                            device=device, decoder=decoder)
    for record, result in _probed_stream(records, job, workers=workers, probed=probed,
                                         desc=f"decode {'train' if train else 'test'}"):
        if isinstance(result, str):
            yield record, result
            continue
        clip, clip_times = (np.asarray(x) for x in result)
        yield record, DecodedVideo(frames=clip, times_s=clip_times, salient=salient_mask(record.segments, clip_times))


def motion_stream(
    records: Sequence[VideoRecord],
    *,
    t: int,
    short_side: int,
    crop: int,
    views: int = 1,
    seed: int = 0,
    train: bool = False,
    workers: int,
    probed: Mapping[Source, tuple[int, float] | str] | None = None,
    device: str = "cpu",
    decoder: str = "cpu",
) -> Iterator[tuple[VideoRecord, np.ndarray | str]]:
    """MGSampler's motion ``[views, t]`` float32 of every record at exactly the frames :func:`decode_stream`
    decodes with the same arguments (each with its successor), yielding ``(record, motion or reason)`` in
    record order. Decodes 2T frames per view; run only for samplers that read motion."""
    job = functools.partial(_motion_video, t=t, short_side=short_side, crop=crop, views=views, seed=seed, train=train,
                            device=device, decoder=decoder)
    for record, result in _probed_stream(records, job, workers=workers, probed=probed, desc="decode motion"):
        yield record, result if isinstance(result, str) else np.asarray(result)


def decode_records(records: Sequence[VideoRecord], *, t: int, crop: int, **kwargs: Any) -> DecodedSplit:
    """:func:`decode_stream` collected in memory: for a few videos (``select``, tests); a run's splits go
    to the frame store instead (:mod:`samplerbench.formats.store`)."""
    frames, salient, video_ids, labels, skipped = [], [], [], [], []
    for record, result in decode_stream(records, t=t, crop=crop, **kwargs):
        if isinstance(result, str):
            skipped.append((record.video_id, str(record.path), result))
            continue
        views = len(result.frames)
        frames.append(torch.from_numpy(result.frames))
        salient.append(result.salient)
        video_ids += [record.video_id] * views
        labels += [record.labels] * views
    return DecodedSplit(
        frames=torch.cat(frames) if frames else torch.zeros(0, t, 3, crop, crop, dtype=torch.uint8),
        video_ids=video_ids,
        salient=torch.from_numpy(np.concatenate([np.zeros((0, t), dtype=bool), *salient])),
        labels=labels,
        skipped=skipped,
    )
