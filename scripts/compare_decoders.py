"""Compare CPU video decoders on the repository's test videos and generated ones (issue 25, item 4).

For each backend (decord, decord2, PyAV, torchcodec), in a process of its own: every video's frame count and
fps (hence the T segment-centre indices the decode stage picks), its frames at those indices (pixel differences
against PyAV, the reference every backend is compared with), videos/s decoding T frames per video, and the
resident memory before and after ``--rss-decodes`` decodes. decord and decord2 share the module name ``decord``:
decord2 is measured from a folder given by ``--decord2-path`` (``pip install --no-deps --target DIR decord2``).

    python scripts/compare_decoders.py --out /tmp/decoders --decord2-path /tmp/decord2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
T = 16


def write_videos(folder: Path) -> list[Path]:
    """The clips tests/test_video_robustness.py decodes, a rotated one, synthetic videos of the default preset's
    size (96×72, up to 120 frames) and of the paper preset's (340×256, 300 frames)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from videofiles import write_clip

    from samplerbench.datasets.synthetic import SyntheticConfig, generate

    clips = {"clip.mkv": "libx264", "vp8.webm": "libvpx", "vp9.webm": "libvpx-vp9", "clip.avi": "mpeg4",
             "clip.mov": "libx264", "mpeg4.mp4": "mpeg4", "h264.mp4": "libx264"}
    videos = [write_clip(folder / name, codec=codec) for name, codec in clips.items()]
    videos.append(write_clip(folder / "rotated.mp4", rotation=90))
    for name, cfg in {"default": SyntheticConfig(num_classes=2, train_per_class=4, val_per_class=4),
                      "paper": SyntheticConfig(num_classes=2, train_per_class=1, val_per_class=1, width=340,
                                               height=256, min_frames=300, max_frames=300)}.items():
        generate(cfg, seed=0, root=folder / name, workers=2)
        videos += sorted((folder / name / "videos").glob("*.mp4"))
    return videos


class Backend:
    """One decoder: ``open(path)`` → ``(frame count, fps, reader)``; ``frames(...)`` → ``[n, H, W, 3]`` uint8."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name in ("decord", "decord2"):
            import decord

            self.version = decord.__version__
            self.decord = decord
        elif name == "pyav":
            import av

            self.version = av.__version__
        elif name == "torchcodec":
            import torchcodec

            self.version = torchcodec.__version__

    def open(self, path: Path):
        if self.name in ("decord", "decord2"):
            vr = self.decord.VideoReader(str(path), ctx=self.decord.cpu(0), num_threads=1)
            return len(vr), float(vr.get_avg_fps()), vr
        if self.name == "pyav":
            from samplerbench.stages.decode import _av_probe

            n, fps = _av_probe(path)
            return n, fps, None
        from torchcodec.decoders import VideoDecoder

        dec = VideoDecoder(str(path), device="cpu", num_ffmpeg_threads=1, seek_mode="exact")
        return dec.metadata.num_frames, float(dec.metadata.average_fps), dec

    def frames(self, reader, path: Path, indices: np.ndarray) -> np.ndarray:
        if self.name in ("decord", "decord2"):
            return reader.get_batch(indices.tolist()).asnumpy()
        if self.name == "pyav":
            from samplerbench.stages.decode import _decode_av

            return _decode_av(path, indices)
        return reader.get_frames_at(indices.tolist()).data.permute(0, 2, 3, 1).numpy()


def key(path: Path) -> str:
    """A video's name in the reports: the synthetic sets' file names repeat, so their set's name goes first."""
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == "videos" else path.name


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(name: str, videos: list[Path], out: Path, rss_decodes: int) -> None:
    from samplerbench.core.timeline import presample_indices

    backend = Backend(name)
    report: dict = {"backend": name, "version": backend.version, "videos": {}}
    for path in videos:
        try:
            n, fps, reader = backend.open(path)
            idx = np.unique(presample_indices(n, T))
            frames = backend.frames(reader, path, idx)
        except Exception as e:  # a backend that cannot read a file is a finding, not a crash of the comparison
            report["videos"][key(path)] = {"error": f"{type(e).__name__}: {e}"[:200]}
            continue
        np.save(out / f"{name}-{path.parent.parent.name}-{path.name}.npy", frames)
        report["videos"][key(path)] = {"frames": n, "fps": fps, "indices": idx.tolist(), "shape": frames.shape}
    # timed: the synthetic videos this backend reads (one it cannot read is reported above, not timed)
    timed = [v for v in videos if v.parent.name == "videos" and "error" not in report["videos"][key(v)]]

    def decode(path: Path) -> None:
        n, _, reader = backend.open(path)
        backend.frames(reader, path, np.unique(presample_indices(n, T)))

    for path in timed:  # warm-up
        decode(path)
    for label, subset in (("default", [v for v in timed if "default" in v.parts]),
                          ("paper", [v for v in timed if "paper" in v.parts])):
        if not subset:
            report[f"videos_per_s_{label}"] = float("nan")
            continue
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < 5 or count < len(subset):
            decode(subset[count % len(subset)])
            count += 1
        report[f"videos_per_s_{label}"] = count / (time.perf_counter() - start)
    small = [v for v in timed if "default" in v.parts] or timed
    before = rss_mb()
    for i in range(rss_decodes):
        decode(small[i % len(small)])
    report["rss_mb_before"], report["rss_mb_after"] = before, rss_mb()
    report["rss_decodes"] = rss_decodes
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--decord2-path", type=Path, help="a folder holding decord2's 'decord' package")
    parser.add_argument("--rss-decodes", type=int, default=1000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        videos = [Path(p) for p in json.loads((args.out / "videos.json").read_text())]
        worker(args.worker, videos, args.out, args.rss_decodes)
        return
    folder = Path(tempfile.mkdtemp(prefix="decoders-"))
    videos = write_videos(folder)
    (args.out / "videos.json").write_text(json.dumps([str(v) for v in videos]))
    for name in ("pyav", "decord", "decord2", "torchcodec"):
        env = dict(os.environ)
        if name == "decord2":
            if not args.decord2_path:
                continue
            env["PYTHONPATH"] = f"{args.decord2_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
        subprocess.run([sys.executable, __file__, "--out", str(args.out), "--worker", name,
                        "--rss-decodes", str(args.rss_decodes)], env=env, check=True)
    summarise(args.out, videos)


def summarise(out: Path, videos: list[Path]) -> None:
    reports = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "videos"}
    ref = reports["pyav"]
    for name, rep in reports.items():
        same_idx, diffs, errors = 0, [], []
        for path in videos:
            mine, theirs = rep["videos"][key(path)], ref["videos"][key(path)]
            if "error" in mine:
                errors.append(f"{key(path)}: {mine['error']}")
                continue
            same_idx += mine["indices"] == theirs["indices"]
            a = np.load(out / f"{name}-{path.parent.parent.name}-{path.name}.npy").astype(np.int16)
            b = np.load(out / f"pyav-{path.parent.parent.name}-{path.name}.npy").astype(np.int16)
            if a.shape != b.shape:
                errors.append(f"{path.name}: shape {a.shape} vs PyAV {b.shape}")
                continue
            diffs.append((np.abs(a - b).mean(), np.abs(a - b).max(), path.name))
        worst = max(diffs)
        print(f"{name} {rep['version']}: indices equal to PyAV's on {same_idx}/{len(videos)} videos; "
              f"|Δpixel| vs PyAV mean {np.mean([d[0] for d in diffs]):.3f}, worst mean {worst[0]:.3f} "
              f"max {worst[1]} ({worst[2]}); videos/s (T={T}) default {rep['videos_per_s_default']:.1f}, "
              f"paper {rep['videos_per_s_paper']:.1f}; RSS {rep['rss_mb_before']:.0f} → {rep['rss_mb_after']:.0f} MB "
              f"over {rep['rss_decodes']} decodes" + "".join(f"\n  cannot read {e}" for e in errors))


if __name__ == "__main__":
    main()
