"""``samplerbench doctor``: every kind of stage a run has, on tiny generated data, on the chosen device.

A run's own code does the work (the pipeline's stages in a fresh temporary cache, the registry's samplers, the
checkpoint and bank writers and readers, the throughput timer), with the run's device, precision, memory
layout, compile mode and decoder, so a check that passes here is that path working on this machine. Each
check prints one line: ``ok``, or ``FAIL`` with the error and the likely fix; a check whose input failed is
``skip`` (so is gathering across processes on a single GPU). The surprising fact: nothing is cached between
two calls, so each call generates, decodes and trains afresh (about a minute on 2 CPU cores)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp
from torchvision.io import encode_jpeg

from samplerbench.config import RunConfig, build_config
from samplerbench.core import distributed
from samplerbench.core.errors import UserError
from samplerbench.core.stagelog import StageLog, progress_bars
from samplerbench.core.timeline import presample_indices
from samplerbench.datasets.base import FrameFolder
from samplerbench.evaluation.evaluator import machine_name
from samplerbench.formats.bank import read_bank
from samplerbench.measures.cost import measure_interleaved
from samplerbench.recognizers.backbones import FEM_ARCHS
from samplerbench.runs.select import load_sampler
from samplerbench.samplers import list_samplers
from samplerbench.stages.banks import export_bank
from samplerbench.stages.checkpoint import write_checkpoints
from samplerbench.stages.decode import (
    PIXEL_TOLERANCE,
    _decode_av,
    decode_clip,
    decode_frames,
    probe,
    resize_crop,
    torchcodec_frames,
)
from samplerbench.stages.pipeline import Pipeline
from samplerbench.stages.source import Outputs
from samplerbench.stages.throughput import decode_timing, pipeline_step

PACKAGES = ("torch", "torchvision", "decord", "decord2", "av", "torchcodec", "numpy")
FIXES = {
    "device": "install a torch build for this device (pip install torch from the CUDA index), or --device cpu",
    "generate": "PyAV must encode H.264: pip install --force-reinstall av",
    "decode video": "pip install decord av (decord2 is a drop-in for decord); --decoder torchcodec also needs "
                    "pip install torchcodec and FFmpeg 4-8 libraries",
    "decode frame folder": "torchvision's decode_jpeg on this device (the CUDA wheel of torchvision has nvJPEG)",
    "frame store": "the cache folder must be writable, with free space ($TMPDIR here)",
    "train": "a bug on this device, precision or compile mode: rerun without --compile to tell, and report this line",
    "sampler": "a bug in this sampler on this device: report this line",
    "select": "a bug in checkpoints or `samplerbench select` on this device: report this line",
    "throughput": "a bug in the timed pipeline on this device: report this line",
    "bank": "the bank writer or reader: report this line",
    "gather": "torch.distributed between two processes (NCCL on CUDA, gloo on CPU): try NCCL_DEBUG=INFO, or run "
              "one process per node",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the report: ``ok`` True (passed), False (failed) or None (not run, ``detail`` says why)."""

    name: str
    ok: bool | None
    detail: str
    seconds: float

    def line(self) -> str:
        status = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{status} {self.name:<38} {self.detail} ({self.seconds:.1f} s)"


class Skip(Exception):
    """Raised by a check that does not apply on this machine; its message says why."""


def versions() -> str:
    """The installed versions of the packages a run decodes and computes with (``-`` when absent)."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def device_line(device: str) -> str:
    """The device a run would use, its name and, on CUDA, the CUDA and cuDNN versions and the device count."""
    if device.startswith("cuda"):
        return (f"{device}: {torch.cuda.get_device_name(torch.device(device))}, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}, {torch.cuda.device_count()} device(s)")
    return f"cpu: {machine_name('cpu')}"


def doctor_config(*, device: str, compile_model: bool, decoder: str, workers: int | None) -> RunConfig:
    """The tiny preset shrunk to seconds: 2 classes, 7 videos each, T = 8, one epoch of every model."""
    synthetic = dict(num_classes=2, train_per_class=4, val_per_class=3, min_frames=6, max_frames=24, width=64,
                     height=48)
    return build_config("tiny", device=device, compile=compile_model, workers=workers,
                        data=dict(decoder=decoder, options={"synthetic": synthetic}),
                        recognizer=dict(epochs=1), fem=dict(epochs=1), sampling=dict(epochs=1),
                        cost=dict(iters=1, batch=4))


def _mean_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean())


def _finite(name: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if not torch.isfinite(t.float()).all():
            raise AssertionError(f"{name}: non-finite values")


class Doctor:
    """Runs the checks in order, each once its inputs passed, printing each line as it finishes."""

    def __init__(self, cfg: RunConfig, *, root: Path, emit: Callable[[str], None]) -> None:
        self.cfg, self.root, self.emit = cfg, root, emit
        self.pipe = Pipeline(cfg, cache_dir=root / "cache", log=StageLog(quiet=True))
        self.checks: list[Check] = []
        self.passed: set[str] = set()

    def check(self, name: str, fn: Callable[[], str], *, fix: str, needs: tuple[str, ...] = ()) -> None:
        start = time.perf_counter()
        failed = [n for n in needs if n not in self.passed]
        if failed:
            result = Check(name=name, ok=None, detail=f"not run: {failed[0]} failed", seconds=0.0)
        else:
            try:
                result = Check(name=name, ok=True, detail=fn(), seconds=time.perf_counter() - start)
                self.passed.add(name)
            except Skip as e:
                result = Check(name=name, ok=None, detail=str(e), seconds=time.perf_counter() - start)
            except Exception as e:  # a check reports any failure as its line: that is what the doctor is for
                where = traceback.extract_tb(e.__traceback__)[-1]
                lines = [line for line in str(e).splitlines() if line.strip()] or [""]
                # a worker process's error arrives as its whole traceback: its last line is the error
                message = (lines[-1] if isinstance(e, mp.ProcessRaisedException) else lines[0])[:240]
                result = Check(name=name, ok=False, seconds=time.perf_counter() - start,
                               detail=f"{type(e).__name__}: {message} [{Path(where.filename).name}:{where.lineno}]; "
                                      f"fix: {FIXES[fix]}")
        self.checks.append(result)
        self.emit(result.line())

    # -- the checks ---------------------------------------------------------------------------------------
    def generate(self) -> str:
        data = self.pipe.source.index()
        return f"{len(data.split('train'))} train + {len(data.split('val'))} val synthetic H.264 videos"

    def _first_video(self) -> tuple[Path, int]:
        record = self.pipe.source.index().split("val")[0]
        info = probe(record.path)
        if isinstance(info, str):
            raise AssertionError(f"{record.path}: {info}")
        return record.path, info[0]

    def decode_video(self) -> str:
        """T frames by the run's decoder against PyAV's (the reference), resized the same way."""
        cfg = self.cfg
        path, n = self._first_video()
        idx = presample_indices(n, cfg.data.frames)
        size = dict(short_side=cfg.data.short_side, crop=cfg.recognizer.res)
        got = decode_clip(path, idx, **size, device=cfg.device, decoder=cfg.data.decoder)
        unique, inverse = np.unique(idx, return_inverse=True)
        ref = resize_crop(torch.from_numpy(_decode_av(path, unique)), **size)[torch.from_numpy(inverse)]
        if cfg.data.decoder != "cpu":  # the run's decoder itself, not its fallback
            raw = torchcodec_frames(path, unique, device=cfg.device)
            if raw.device.type != torch.device(cfg.device).type:
                raise AssertionError(f"torchcodec decoded on {raw.device}, not {cfg.device}")
        diff = _mean_diff(got, ref)
        if got.shape != ref.shape or diff > PIXEL_TOLERANCE:
            raise AssertionError(f"{tuple(got.shape)} frames, mean |Δ| {diff:.2f} vs PyAV (tolerance "
                                 f"{PIXEL_TOLERANCE})")
        return f"{cfg.data.decoder} decoder, {len(idx)} frames, mean |Δpixel| vs PyAV {diff:.2f}"

    def decode_folder(self) -> str:
        """A frame folder written from the video's frames, its JPEGs decoded on the run's device."""
        cfg = self.cfg
        path, n = self._first_video()
        folder = self.root / "frames_folder"
        folder.mkdir(exist_ok=True)
        images = torch.from_numpy(_decode_av(path, np.arange(n))).permute(0, 3, 1, 2)
        record = FrameFolder(path=folder, total_frames=n)
        for i, image in enumerate(images):
            record.frame_path(i).write_bytes(encode_jpeg(image.contiguous(), quality=95).numpy().tobytes())
        idx = presample_indices(n, cfg.data.frames)
        size = dict(short_side=cfg.data.short_side, crop=cfg.recognizer.res)
        got = decode_frames(record, np.unique(idx), **size, device=cfg.device)
        diff = _mean_diff(got, resize_crop(images[np.unique(idx)], **size))
        if diff > PIXEL_TOLERANCE:
            raise AssertionError(f"mean |Δpixel| {diff:.2f} against the frames written (tolerance {PIXEL_TOLERANCE})")
        return f"{len(got)} JPEGs decoded on {cfg.device}, mean |Δpixel| vs the frames written {diff:.2f}"

    def frame_store(self) -> str:
        """Both splits decoded into the store by worker processes, one row read back against a direct decode."""
        cfg = self.cfg
        train, val = self.pipe.source.split("train"), self.pipe.source.split("val")
        record = next(r for r in self.pipe.source.index().split("val") if r.video_id == val.video_ids[0])
        n = probe(record.path)[0]
        direct = decode_clip(record.path, presample_indices(n, cfg.data.frames), short_side=cfg.data.short_side,
                             crop=cfg.recognizer.res, device=cfg.device, decoder=cfg.data.decoder)
        stored = val.frames[0:1][0]
        if not torch.equal(stored, direct):
            raise AssertionError(f"row 0 of the store differs from a direct decode (mean |Δ| "
                                 f"{_mean_diff(stored, direct):.2f})")
        return f"{len(train.frames)} train + {len(val.frames)} val rows written by {cfg.workers} worker(s), read back"

    def backbone(self, role: str, arch: str) -> Callable[[], str]:
        def run() -> str:
            out = self.pipe.source.outputs(role, arch)
            _finite(arch, out.train_feats, out.val_logits, torch.tensor(out.training.losses))
            mode = "bf16 autocast, channels_last" if self.cfg.device.startswith("cuda") else "float32"
            return (f"{out.training.epochs} epoch, loss {out.training.losses[-1]:.3f}, features "
                    f"{tuple(out.val_feats.shape)} ({mode}{', compiled' if self.cfg.compile else ''})")

        return run

    def sampler(self, name: str, fields: dict) -> Callable[[], str]:
        def run() -> str:
            k = self.cfg.sampling.main_budget
            sampler, feats = self.pipe.sampler(name, fem=self.fem, rec=self.rec, **fields)
            index = sampler.select(feats, k).cpu()
            t = self.cfg.data.frames
            width = t if sampler.keeps_all else k
            if index.shape != (len(feats.fem), width) or index.min() < 0 or index.max() >= t:
                raise AssertionError(f"select gave {tuple(index.shape)} indices in [{index.min()}, {index.max()}]")
            if not (index.diff(dim=1) > 0).all():
                raise AssertionError("selected indices are not sorted and distinct")
            fit = "fit 1 epoch, " if sampler.trainable else ""
            return f"{fit}selected {width} of {t} frames of {len(index)} videos"

        return run

    @property
    def rec(self) -> Outputs:
        return self.pipe.source.outputs("recognizer", self.cfg.recognizer.arch)

    @property
    def fem(self) -> Outputs:
        return self.pipe.source.outputs("fem", self.cfg.fem.arch)

    def select(self) -> str:
        """Checkpoints written as a run writes them, loaded by ``samplerbench select``'s code, used on videos."""
        cfg = self.cfg
        folder = self.root / "checkpoints"
        write_checkpoints(folder, self.pipe.fitted, previous=self.root / "none", cfg=cfg,
                          classes=self.pipe.source.index().classes, fem=self.fem, rec=self.rec)
        trained = load_sampler(folder / "nsnet.pt", device=cfg.device)
        videos = [r.path for r in self.pipe.source.index().split("val")[:2]]
        chosen = trained.select_videos(videos, cfg.sampling.main_budget, top5=True)
        if any("skipped" in c for c in chosen):
            raise AssertionError(f"skipped: {[c.get('skipped') for c in chosen]}")
        return f"nsnet.pt on {len(chosen)} videos: frames {chosen[0]['frame_indices']}"

    def throughput(self) -> str:
        cfg = self.cfg
        frames, steps = self.pipe.source.split("val").frames[0 : cfg.cost.batch], {}
        for name in ("dense", "nsnet"):
            sampler, _ = self.pipe.sampler(name, fem=self.fem, rec=self.rec)
            steps[name] = pipeline_step(
                sampler=sampler, frames=frames, k=cfg.sampling.main_budget, recognizer=self.rec.model,
                fem=self.fem.model, fem_res=cfg.fem.res, num_classes=self.rec.val_logits.shape[-1], device=cfg.device,
                compile_model=cfg.compile)
        timings = measure_interleaved(steps, reference="dense", items_per_call=len(frames),
                                      device=torch.device(cfg.device), min_rounds=1, min_seconds=0.0)
        rates = [f"{name} {timing.items_per_s:.0f}" for name, timing in timings.items()]
        path, n = self._first_video()
        dec = decode_timing([(path, n)], cfg.data.frames, short_side=cfg.data.short_side, crop=cfg.recognizer.res,
                            decoder=cfg.data.decoder, device=cfg.device if cfg.data.decoder != "cpu" else "cpu",
                            min_seconds=0.0)
        return f"videos/s {', '.join(rates)}; decode ({cfg.data.decoder}) {1 / dec.seconds:.0f} videos/s"

    def bank(self) -> str:
        folder = self.root / "bank"
        export_bank(self.pipe.source, folder, fem=self.fem, rec=self.rec)
        bank = read_bank(folder)
        val = bank.splits["val"]
        if not np.array_equal(np.asarray(val.fem_features), self.fem.val_feats.numpy()):
            raise AssertionError("the bank's val FEM features differ from the ones written")
        return f"{len(bank.splits['train'])} + {len(val)} rows written and read back"

    def gather(self) -> str:
        """Two processes joined as torchrun would join them, gathering rows and objects."""
        cuda = self.cfg.device.startswith("cuda")
        if cuda and torch.cuda.device_count() < 2:
            raise Skip("one CUDA device: gathering across GPUs needs two")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.start_processes(_gather_worker, args=(port, "cuda" if cuda else "cpu"), nprocs=2, start_method="spawn")
        return f"2 processes ({'NCCL' if cuda else 'gloo'}): rows and objects gathered in rank order"

    # -- all of them --------------------------------------------------------------------------------------
    def run_all(self) -> list[Check]:
        self.check("generate", self.generate, fix="generate")
        self.check("decode video", self.decode_video, fix="decode video", needs=("generate",))
        self.check("decode frame folder", self.decode_folder, fix="decode frame folder", needs=("generate",))
        self.check("frame store", self.frame_store, fix="frame store", needs=("decode video",))
        backbones = [("recognizer", self.cfg.recognizer.arch), *(("fem", arch) for arch in FEM_ARCHS)]
        for role, arch in backbones:
            self.check(f"train+extract {role} {arch}", self.backbone(role, arch), fix="train", needs=("frame store",))
        needs = (f"train+extract recognizer {self.cfg.recognizer.arch}", f"train+extract fem {self.cfg.fem.arch}")
        variants = [(name, {}) for name in list_samplers()] + [("nsnet", {"d": "fem"})]  # the paper preset's width
        for name, fields in variants:
            label = name + "".join(f" {k}={v}" for k, v in fields.items())
            self.check(f"sampler {label}", self.sampler(name, fields), fix="sampler", needs=needs)
        self.check("select (checkpoint)", self.select, fix="select", needs=("sampler nsnet",))
        self.check("throughput", self.throughput, fix="throughput", needs=("sampler nsnet", "sampler dense"))
        self.check("bank export+read", self.bank, fix="bank", needs=needs)
        self.check("gather (2 processes)", self.gather, fix="gather")
        return self.checks


def _gather_worker(rank: int, port: int, kind: str) -> None:
    """One of two processes: :func:`distributed.session` as under torchrun, then both gathers, checked."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    with distributed.session(kind) as device:
        rows = distributed.gather_rows(torch.full((rank + 1, 3), float(rank), device=device))
        expected = torch.tensor([[0.0] * 3, [1.0] * 3, [1.0] * 3], device=device)
        if not torch.equal(rows, expected) or distributed.gather({"rank": rank}) != [{"rank": 0}, {"rank": 1}]:
            raise AssertionError(f"rank {rank} gathered {rows.tolist()}")


def doctor(*, device: str, compile_model: bool = False, decoder: str = "cpu", workers: int | None = None,
           emit: Callable[[str], None] = print) -> bool:
    """Run every check on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``), printing the versions, the device and
    one line per check through ``emit``; True when none failed."""
    start = time.perf_counter()
    try:
        kind = "cpu" if device == "auto" else torch.device(device).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):  # a mistake in the command, not a fault of the machine
        raise UserError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto")
    emit(f"versions: {versions()}")
    try:
        device = distributed.resolve_device(device)
    except UserError as e:  # what this machine lacks: CUDA, or that many devices
        emit(Check(name="device", ok=False, detail=f"{e}; fix: {FIXES['device']}", seconds=0.0).line())
        return False
    emit(f"device: {device_line(device)}")
    cfg = doctor_config(device=device, compile_model=compile_model, decoder=decoder, workers=workers)
    root = Path(tempfile.mkdtemp(prefix="samplerbench-doctor-"))
    try:
        with progress_bars(False):
            checks = Doctor(cfg, root=root, emit=emit).run_all()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = [c for c in checks if c.ok is False]
    emit(f"{len(checks) - len(failed)} of {len(checks)} checks passed or do not apply, {len(failed)} failed, in "
         f"{time.perf_counter() - start:.0f} s")
    return not failed
