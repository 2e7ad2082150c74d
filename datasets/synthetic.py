"""The embedded default dataset: small untrimmed videos whose statistics resemble real ones.

Every video is one class, shown strongly only inside one or two annotated *salient segments* (a
``salient_fraction`` of it); the other frames carry weak but correct evidence (class-linked scenes), plus
class-independent distractor blobs, camera motion and pixel noise. docs/datasets.md, "The synthetic dataset",
describes each layer and why it is there.

Annotations are written in ActivityNet v1.3 format (read back with :func:`parse_activitynet`); a segment
``[a/fps, b/fps]`` covers exactly frames ``a .. b-1`` (:func:`samplerbench.core.timeline.frame_times`). A seed
reproduces byte-identical files, whatever the worker count."""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import itertools
import json
import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import ClassVar

import av
import numpy as np

from samplerbench.core.errors import UserError
from samplerbench.core.fields import Range
from samplerbench.core.files import atomic_write
from samplerbench.core.stagelog import progress
from samplerbench.datasets.activitynet import ANNOTATION_FILE, parse_activitynet
from samplerbench.datasets.base import DatasetIndex, DatasetOptions, register_dataset
from samplerbench.formats.cache import stage_key

GENERATOR_VERSION = 3  # bump when the generated content changes, so cached datasets are regenerated

SHAPES = ("disc", "square", "triangle", "cross", "ring", "diamond")
COLOURS = {
    "red": (0.90, 0.12, 0.10),
    "green": (0.10, 0.72, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "magenta": (0.85, 0.15, 0.85),
    "cyan": (0.10, 0.80, 0.85),
}
TEXTURES = ("plain", "hstripes", "vstripes")

_BACKGROUND_SCALE = 1.5  # background blotches per shorter side, roughly
_HOME_SCENES = 2  # scenes per class that its videos favour; scene s is home to classes s - 1 and s
_NOISE_SIGMA = 0.03  # per-pixel noise, in [0, 1] intensity units
_NOISE_BANK = 64  # pre-drawn noise frames each frame picks from (drawing fresh noise would dominate the time)
_STAGE = 0.8  # the pattern stays inside the central square of this fraction of the shorter side
_RADIUS = 0.21  # pattern radius, as a fraction of the shorter side
_CAMERA_PERIOD = (16.0, 64.0)  # frames per cycle of the camera's wander and zoom: 2 to 8 s at 8 fps
_CHUNK = 32  # frames rendered at once (bounds memory for large frame sizes)
_STYLE_ORDER_SEED = 20240601  # fixes which attribute combinations the classes get, independent of --seed
_HABIT_SEED = 20240602  # fixes each class's habit (where and how long its action is), independent of --seed
HABIT_KINDS = ("early", "late", "anywhere")  # where a class's action happens, dealt to the classes in turn
HABIT_PLACES = {"early": (0.1, 0.3), "late": (0.7, 0.9)}  # range of a class's typical centre, in video lengths
_SHARE_JITTER = (0.75, 1.25)  # a video's salient share is its class's times a factor drawn from this range
_MAX_GAP = 0.2  # between a video's two segments, at most this share of the video, so both stay near the habit


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyntheticConfig(DatasetOptions):
    """The generated dataset (``[data.options.synthetic]``): what the videos contain is in the module note.
    Its fields are hashed into the dataset's folder name (:func:`dataset_root`), so renaming one regenerates it."""

    RANGES: ClassVar[dict[str, Range]] = {
        "context": Range(0.0, 1.0),
        "camera_pan": Range(0.0, 0.08),  # the largest pan and zoom that keep the pattern inside the centre crop
        "camera_zoom": Range(0.0, 0.2),
        "habit_spread": Range(0.0, 1.0),
    }
    num_classes: int = 10
    train_per_class: int = 30
    val_per_class: int = 40
    min_frames: int = 12  # some videos are shorter than T on purpose
    max_frames: int = 120
    width: int = 96
    height: int = 72
    fps: int = 8
    # range of the classes' salient shares: each class's share of its videos inside salient segments is spread
    # over it (brief actions are hard to find, long ones easy); a video's share varies around its class's
    salient_fraction: tuple[float, float] = (0.08, 0.45)
    habit_spread: float = 0.1  # how far a habitual class's segments stray from its typical place (std, video lengths)
    shot_frames: int = 24  # mean shot length: a video cuts to a new scene every this many frames (± 50%)
    context: float = 0.5  # share of a class's shots filmed in one of its two home scenes (else any scene)
    camera_pan: float = 0.05  # how far the camera wanders, as a fraction of the shorter side (at most)
    camera_zoom: float = 0.08  # the camera's zoom factor stays within 1 ± this (at most)

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.salient_fraction
        checks = [
            (self.num_classes >= 2, f"num_classes={self.num_classes} must be at least 2"),
            (
                2 <= self.min_frames <= self.max_frames,
                f"need 2 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}",
            ),
            (
                self.width >= 16 and self.height >= 16 and self.width % 2 == 0 and self.height % 2 == 0,
                f"width and height must be even and at least 16 (H.264 yuv420p), got {self.width}x{self.height}",
            ),
            (0 < lo <= hi < 1, f"salient_fraction={self.salient_fraction} must satisfy 0 < low <= high < 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"synthetic dataset: {message}")


@dataclasses.dataclass(frozen=True)
class ClassStyle:
    """What one class looks like."""

    shape: str
    colour: str
    texture: str

    @property
    def name(self) -> str:
        return f"{self.colour}_{self.texture}_{self.shape}"


@dataclasses.dataclass(frozen=True)
class Sprite:
    """A moving pattern. ``start`` is in [-1, 1]² of the range its centre may take around the frame's middle;
    velocity in px/frame; radius in px; tilt in radians; ``stripe_speed`` in stripe periods per frame."""

    start: np.ndarray
    velocity: np.ndarray
    radius: float
    tilt: float
    rgb: np.ndarray
    stripe_speed: float


@dataclasses.dataclass(frozen=True)
class Camera:
    """A slow hand-held camera: the view wanders by up to ``pan`` px around its rest position and zooms by a
    factor in ``1 ± zoom``, each along a sinusoid (``periods`` in frames, ``phases`` in radians: x, y, zoom)."""

    pan: float
    zoom: float
    periods: np.ndarray  # [3]
    phases: np.ndarray  # [3]

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets x, y (px) and zoom factor at frame times ``t``."""
        wave = np.sin(2 * np.pi * t[None, :] / self.periods[:, None] + self.phases[:, None])
        return self.pan * wave[0], self.pan * wave[1], 1 + self.zoom * wave[2]


@dataclasses.dataclass(frozen=True)
class Shot:
    """Frames from ``start`` to the next shot's start, filmed in one scene: the scene texture seen from
    ``offset`` (px into the periodic texture) drifting by ``drift`` px/frame."""

    start: int
    scene: int  # one of the label's home scenes with probability cfg.context, else any scene
    offset: np.ndarray  # [2]
    drift: np.ndarray  # [2]


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and to annotate it; a pure function of (seed, index)."""

    video_id: str
    subset: str
    label: int
    length: int
    segments: tuple[tuple[int, int], ...]  # half-open frame ranges [a, b) where the class pattern is drawn
    shots: tuple[Shot, ...]  # in order, the first starting at frame 0
    blobs: np.ndarray  # [n, 10]: x0, y0, vx, vy, sigma_x, sigma_y, r, g, b, opacity
    pattern: Sprite
    camera: Camera
    noise_seed: tuple[int, ...]


# ---------------------------------------------------------------------------------------------- classes


def class_styles(num_classes: int) -> list[ClassStyle]:
    """``num_classes`` attribute combinations, any two differing in at least two attributes when possible; greedy
    and deterministic for a given ``num_classes``."""
    combos = list(itertools.product(range(len(SHAPES)), range(len(COLOURS)), range(len(TEXTURES))))
    if num_classes > len(combos):
        raise UserError(f"the synthetic dataset has at most {len(combos)} classes, got {num_classes}")
    shuffled = [combos[i] for i in np.random.default_rng(_STYLE_ORDER_SEED).permutation(len(combos))]
    chosen: list[tuple[int, int, int]] = []

    def distance(combo: tuple[int, int, int]) -> int:
        return min((sum(a != b for a, b in zip(combo, c, strict=True)) for c in chosen), default=3)

    def usage(combo: tuple[int, int, int]) -> int:
        return sum(c[f] == combo[f] for c in chosen for f in range(3))

    for _ in range(num_classes):
        free = [c for c in shuffled if c not in chosen]
        far = [c for c in free if distance(c) >= 2] or free
        chosen.append(min(far, key=usage))
    colours = list(COLOURS)
    return [ClassStyle(shape=SHAPES[s], colour=colours[c], texture=TEXTURES[t]) for s, c, t in chosen]


@dataclasses.dataclass(frozen=True)
class ClassHabit:
    """Where and for how long one class's action happens: ``place`` is the typical centre of its salient frames
    (a share of the video's length) or ``None`` for a class that acts anywhere; ``share`` the mean share of its
    videos inside salient segments."""

    kind: str  # one of HABIT_KINDS
    place: float | None
    share: float


def class_habits(cfg: SyntheticConfig) -> list[ClassHabit]:
    """One habit per class, a fixed draw (independent of ``--seed``, as the class looks are): the kinds of
    :data:`HABIT_KINDS` dealt in turn, places drawn from :data:`HABIT_PLACES`, and shares spread evenly over
    ``cfg.salient_fraction`` (one stratum per class, shuffled), so that the classes range from brief and hard to
    long and easy."""
    rng = np.random.default_rng(_HABIT_SEED)
    n, (lo, hi) = cfg.num_classes, cfg.salient_fraction
    kinds = [HABIT_KINDS[i % len(HABIT_KINDS)] for i in rng.permutation(n)]
    strata = (rng.permutation(n) + rng.uniform(0, 1, n)) / n
    return [ClassHabit(kind=kind, place=float(rng.uniform(*HABIT_PLACES[kind])) if kind in HABIT_PLACES else None,
                       share=float(lo + (hi - lo) * u))
            for kind, u in zip(kinds, strata, strict=True)]


@dataclasses.dataclass(frozen=True)
class Assets:
    """What all videos of a dataset share: class looks, scene textures and a bank of noise frames."""

    styles: list[ClassStyle]
    scenes: np.ndarray  # float32 [num_scenes, 2H, 2W, 3], periodic so a drifting crop can wrap around
    noise: np.ndarray  # float32 [bank, H, W, 3]


def num_scenes(cfg: SyntheticConfig) -> int:
    """One scene per class: each class has two home scenes and each scene is home to two classes."""
    return cfg.num_classes


def home_scenes(label: int, cfg: SyntheticConfig) -> tuple[int, ...]:
    """The scenes that videos of class ``label`` favour (``cfg.context`` of them are filmed in one)."""
    return tuple((label + i) % num_scenes(cfg) for i in range(_HOME_SCENES))


def make_assets(cfg: SyntheticConfig, *, seed: int) -> Assets:
    """Each scene is a palette and a texture: smooth colour blotches (low-pass filtered noise; filtering in the
    Fourier domain makes them periodic for free) around the scene's own muted hue, plus a faint grating of the
    scene's own orientation and period (tiles, shelves, grass), so a recognizer can tell scenes apart."""
    rng = np.random.default_rng([seed, 1])
    s, h, w = num_scenes(cfg), 2 * cfg.height, 2 * cfg.width
    white = rng.standard_normal((s, h, w, 3))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    cutoff = _BACKGROUND_SCALE / min(cfg.height, cfg.width)
    lowpass = np.exp(-(fx**2 + fy**2) / (2 * cutoff**2))[None, :, :, None]
    smooth = np.fft.irfft2(np.fft.rfft2(white, axes=(1, 2)) * lowpass, s=(h, w), axes=(1, 2))
    smooth /= smooth.std(axis=(1, 2), keepdims=True)
    hues = (np.arange(s) + rng.uniform(-0.2, 0.2, s)) / s
    palette = np.array([colorsys.hsv_to_rgb(hue, rng.uniform(0.3, 0.55), rng.uniform(0.45, 0.75)) for hue in hues])
    # gratings with a whole number of periods across the texture, so it stays periodic
    angle = rng.permutation(s) * np.pi / s
    cycles = rng.integers(3, 7, s)[:, None, None] * 2  # per texture, i.e. 3..6 per frame
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    phase = np.round(cycles * np.cos(angle)[:, None, None]) * xx + np.round(cycles * np.sin(angle)[:, None, None]) * yy
    grating = np.sin(2 * np.pi * phase)[..., None]
    scenes = palette[:, None, None, :] + 0.1 * smooth.mean(axis=-1, keepdims=True) + 0.04 * smooth + 0.06 * grating
    return Assets(
        styles=class_styles(cfg.num_classes),
        scenes=scenes.astype(np.float32),
        noise=(rng.standard_normal((_NOISE_BANK, cfg.height, cfg.width, 3)) * _NOISE_SIGMA).astype(np.float32),
    )


# ---------------------------------------------------------------------------------------------- planning


def plan_segments(rng: np.random.Generator, length: int, fraction: float, *, place: float | None = None,
                  spread: float = 0.0) -> tuple[tuple[int, int], ...]:
    """One or two disjoint, non-adjacent frame ranges covering ``round(fraction * length)`` frames (at least
    one, and never the whole video). The span from the first segment's start to the last one's end lies
    uniformly at random when ``place`` is ``None``, else centred on a draw from N(``place``, ``spread``) (shares
    of the length), moved inside the video where it would stick out."""
    total = int(np.clip(round(fraction * length), 1, length - 1))
    free = length - total
    two = total >= 2 and free >= 2 and rng.random() < 0.5
    first = int(rng.integers(max(1, total // 3), total - max(1, total // 3) + 1)) if two else total  # no slivers
    gap = int(rng.integers(1, max(1, min(free - 1, round(_MAX_GAP * length))) + 1)) if two else 0
    span = total + gap
    if place is None:
        start = int(rng.integers(0, length - span + 1))
    else:
        start = int(np.clip(round(rng.normal(place, spread) * length - span / 2), 0, length - span))
    if not two:
        return ((start, start + total),)
    return (start, start + first), (start + first + gap, start + span)


def plan_shots(rng: np.random.Generator, length: int, mean: int) -> list[int]:
    """Start frames of consecutive shots, the first at 0, each lasting ``mean`` frames ± 50% (uniformly)."""
    starts = [0]
    while True:
        nxt = starts[-1] + max(1, round(mean * rng.uniform(0.5, 1.5)))
        if nxt >= length:
            return starts
        starts.append(nxt)


def _sprite(rng: np.random.Generator, colour: tuple[float, float, float], size: float) -> Sprite:
    speed = rng.uniform(0.3, 1.0) * size / 72
    direction = rng.uniform(0, 2 * np.pi)
    rgb = np.clip(np.asarray(colour) * rng.uniform(0.85, 1.1) + rng.normal(0, 0.05, 3), 0, 1)
    return Sprite(
        start=rng.uniform(-1, 1, 2),  # in units of the free range around the frame centre
        velocity=speed * np.array([np.cos(direction), np.sin(direction)]),
        radius=_RADIUS * size * rng.uniform(0.85, 1.15),
        tilt=rng.uniform(-0.2, 0.2),
        rgb=rgb,
        stripe_speed=rng.uniform(-0.4, 0.4),
    )


def plan_video(
    cfg: SyntheticConfig, *, seed: int, index: int, label: int, subset: str, styles: list[ClassStyle],
    habit: ClassHabit,
) -> VideoPlan:
    """Draw one video's length, segments (after its class's ``habit``) and appearance from a generator seeded by
    ``(seed, index)`` only, so a video does not change when others are added, removed or generated in another
    order."""
    rng = np.random.default_rng([seed, 2, index])
    length = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    segments = plan_segments(rng, length, habit.share * rng.uniform(*_SHARE_JITTER), place=habit.place,
                             spread=cfg.habit_spread)
    size = min(cfg.width, cfg.height)
    shots = tuple(
        Shot(
            start=start,
            scene=int(rng.choice(home_scenes(label, cfg)) if rng.random() < cfg.context
                      else rng.integers(num_scenes(cfg))),
            offset=rng.uniform(0, 1, 2) * (2 * cfg.width, 2 * cfg.height),
            drift=rng.normal(0, 0.3, 2) * size / 72,
        )
        for start in plan_shots(rng, length, cfg.shot_frames)
    )
    n_blobs = int(rng.integers(2, 5))
    blobs = np.concatenate(
        [
            rng.uniform(0, 1, (n_blobs, 2)) * (cfg.width, cfg.height),
            rng.normal(0, 0.8, (n_blobs, 2)) * size / 72,
            rng.uniform(0.05, 0.14, (n_blobs, 2)) * size,
            rng.uniform(0, 1, (n_blobs, 3)),
            rng.uniform(0.5, 0.85, (n_blobs, 1)),
        ],
        axis=1,
    )
    return VideoPlan(
        video_id=f"syn_{index:05d}",
        subset=subset,
        label=label,
        length=length,
        segments=segments,
        shots=shots,
        blobs=blobs,
        pattern=_sprite(rng, COLOURS[styles[label].colour], size),
        camera=Camera(
            pan=cfg.camera_pan * size * rng.uniform(0.5, 1.0),
            zoom=cfg.camera_zoom * rng.uniform(0.5, 1.0),
            periods=rng.uniform(*_CAMERA_PERIOD, 3),
            phases=rng.uniform(0, 2 * np.pi, 3),
        ),
        noise_seed=(seed, 3, index),
    )


def plan_dataset(cfg: SyntheticConfig, *, seed: int) -> list[VideoPlan]:
    """All videos; which id is which class and split is shuffled so ids carry no information."""
    styles, habits = class_styles(cfg.num_classes), class_habits(cfg)
    slots = [
        (subset, label)
        for subset, per_class in (("training", cfg.train_per_class), ("validation", cfg.val_per_class))
        for label in range(cfg.num_classes)
        for _ in range(per_class)
    ]
    order = np.random.default_rng([seed, 0]).permutation(len(slots))
    return [
        plan_video(cfg, seed=seed, index=i, label=slots[j][1], subset=slots[j][0], styles=styles,
                   habit=habits[slots[j][1]])
        for i, j in enumerate(order)
    ]


# ---------------------------------------------------------------------------------------------- rendering


def _bounce(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions moving freely, reflected at ``lo`` and ``hi`` (a triangle wave)."""
    span = max(hi - lo, 1e-6)
    m = np.mod(p - lo, 2 * span)
    return lo + np.where(m > span, 2 * span - m, m)


_SHAPE_DISTANCE = {  # signed distance to the outline in radius units: negative inside
    "disc": lambda u, v: np.hypot(u, v) - 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.82,
    "diamond": lambda u, v: (np.abs(u) + np.abs(v) - 1.1) / np.sqrt(2),
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.74) - 0.26,
    "cross": lambda u, v: np.minimum(
        np.maximum(np.abs(u) - 0.32, np.abs(v) - 1.0), np.maximum(np.abs(v) - 0.32, np.abs(u) - 1.0)
    ),
    "triangle": lambda u, v: np.maximum(
        v - 0.6, np.maximum(0.866 * u - 0.5 * v, -0.866 * u - 0.5 * v) - 0.6
    ),  # apex up, inradius 0.6
}


def _draw_sprite(
    img: np.ndarray, sprite: Sprite, style: ClassStyle, t: np.ndarray, camera: Camera, grid: tuple
) -> None:
    """Composite ``style``'s pattern, moving along ``sprite``'s path and seen through ``camera``, onto frames ``img``
    at times ``t``; the path stays inside the recognizer's centre crop."""
    ys, xs = grid
    height, width = img.shape[1:3]
    off_x, off_y, zoom = camera.at(t.astype(float))
    free = max((_STAGE * min(height, width) / 2 - camera.pan) / (1 + camera.zoom) - sprite.radius, 0.0)
    middle = np.array([width / 2, height / 2])
    pos = middle[None, :] + sprite.start * free + sprite.velocity[None, :] * t[:, None]
    cx = (width / 2 + zoom * (_bounce(pos[:, 0], width / 2 - free, width / 2 + free) - width / 2) - off_x)
    cy = (height / 2 + zoom * (_bounce(pos[:, 1], height / 2 - free, height / 2 + free) - height / 2) - off_y)
    cx, cy, radius = cx.astype(np.float32), cy.astype(np.float32), (sprite.radius * zoom).astype(np.float32)
    reach = 1.2 * float(radius.max()) + 1
    x0, x1 = max(int(cx.min() - reach), 0), min(int(cx.max() + reach) + 1, width)
    y0, y1 = max(int(cy.min() - reach), 0), min(int(cy.max() + reach) + 1, height)
    box = img[:, y0:y1, x0:x1]
    r = radius[:, None, None]
    cos, sin = math.cos(sprite.tilt), math.sin(sprite.tilt)
    du = (xs[:, :, x0:x1] - cx[:, None, None]) / r
    dv = (ys[:, y0:y1] - cy[:, None, None]) / r
    u, v = cos * du + sin * dv, -sin * du + cos * dv
    alpha = np.clip(0.5 - _SHAPE_DISTANCE[style.shape](u, v) * r, 0, 1)
    fill = sprite.rgb.astype(np.float32)
    if style.texture != "plain":
        across = v if style.texture == "hstripes" else u
        bands = 0.5 + 0.5 * np.sin(2 * np.pi * (1.6 * across + sprite.stripe_speed * t[:, None, None]))
        fill = fill * (1 - 0.65 * bands[..., None])
    box += alpha[..., None] * (fill - box)


def _draw_blobs(img: np.ndarray, blobs: np.ndarray, t: np.ndarray, camera: Camera, grid: tuple) -> None:
    """Composite soft Gaussian blobs in order, seen through ``camera``, each only inside the box (±3σ) it
    visits in these frames."""
    ys, xs = grid
    height, width = img.shape[1:3]
    off_x, off_y, zoom = camera.at(t.astype(float))
    f32 = np.float32
    for x0, y0, vx, vy, sx, sy, r, g, b, opacity in blobs:
        cx = width / 2 + zoom * (_bounce(x0 + vx * t, 0, width) - width / 2) - off_x
        cy = height / 2 + zoom * (_bounce(y0 + vy * t, 0, height) - height / 2) - off_y
        sxz, syz = (sx * zoom)[:, None, None], (sy * zoom)[:, None, None]
        reach_x, reach_y = 3 * sx * float(zoom.max()), 3 * sy * float(zoom.max())
        bx0, bx1 = max(int(cx.min() - reach_x), 0), min(int(cx.max() + reach_x) + 1, width)
        by0, by1 = max(int(cy.min() - reach_y), 0), min(int(cy.max() + reach_y) + 1, height)
        if bx0 >= bx1 or by0 >= by1:
            continue
        gx = np.exp(f32(-0.5) * ((xs[:, :, bx0:bx1] - cx[:, None, None].astype(f32)) / sxz.astype(f32)) ** 2)
        gy = np.exp(f32(-0.5) * ((ys[:, by0:by1] - cy[:, None, None].astype(f32)) / syz.astype(f32)) ** 2)
        box = img[:, by0:by1, bx0:bx1]
        box += (opacity * gx * gy)[..., None] * (np.array([r, g, b], f32) - box)


def shot_of(plan: VideoPlan, frames: np.ndarray) -> np.ndarray:
    """Index into ``plan.shots`` of each frame index."""
    return np.searchsorted([s.start for s in plan.shots], frames, side="right") - 1


def salient_frames(plan: VideoPlan, frames: np.ndarray) -> np.ndarray:
    """bool per frame index: inside one of the plan's segments."""
    salient = np.zeros(len(frames), bool)
    for a, b in plan.segments:
        salient |= (frames >= a) & (frames < b)
    return salient


def _render(
    plan: VideoPlan,
    frames: np.ndarray,
    *,
    textures: dict[int, np.ndarray],
    assets: Assets,
    cfg: SyntheticConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """uint8 ``[len(frames), H, W, 3]`` for the given frame indices (rendered in order, for ``rng``)."""
    f32 = np.float32
    grid = (
        np.arange(cfg.height, dtype=f32)[None, :, None] + f32(0.5),
        np.arange(cfg.width, dtype=f32)[None, None, :] + f32(0.5),
    )
    t = frames.astype(f32)
    pan = np.stack(plan.camera.at(frames.astype(float))[:2])

    shot = [plan.shots[i] for i in shot_of(plan, frames)]
    offsets = np.stack([s.offset + s.drift * (f - s.start) for s, f in zip(shot, frames, strict=True)], axis=1)
    ox, oy = (offsets + pan).round().astype(int) % np.array([[2 * cfg.width], [2 * cfg.height]])
    img = np.stack([textures[s.scene][y : y + cfg.height, x : x + cfg.width]
                    for s, x, y in zip(shot, ox, oy, strict=True)])
    _draw_blobs(img, plan.blobs.astype(f32), t, plan.camera, grid)

    salient = salient_frames(plan, frames)
    if salient.any():
        part = img[salient]
        _draw_sprite(part, plan.pattern, assets.styles[plan.label], t[salient], plan.camera, grid)
        img[salient] = part

    img += assets.noise[rng.integers(len(assets.noise), size=len(frames))]
    return np.clip(img * f32(255) + f32(0.5), 0, 255).astype(np.uint8)


def video_frames(plan: VideoPlan, *, assets: Assets, cfg: SyntheticConfig) -> Iterator[np.ndarray]:
    """The video's uint8 ``[H, W, 3]`` frames in order, as encoded (rendered a chunk at a time)."""
    rng = np.random.default_rng(plan.noise_seed)
    # the periodic (2H, 2W) textures, wrap-padded so any (H, W) crop at an offset below (2H, 2W) is a slice
    textures = {s.scene: np.pad(assets.scenes[s.scene], ((0, cfg.height), (0, cfg.width), (0, 0)), mode="wrap")
                for s in plan.shots}
    for start in range(0, plan.length, _CHUNK):
        frames = np.arange(start, min(start + _CHUNK, plan.length))
        yield from _render(plan, frames, textures=textures, assets=assets, cfg=cfg, rng=rng)


def write_mp4(path: Path, frames: Iterator[np.ndarray], *, fps: int, width: int, height: int) -> None:
    """H.264 yuv420p MP4: a keyframe every second so seeking is cheap, CRF 18 so colours survive, one encoder
    thread so the bytes do not depend on scheduling."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        stream.codec_context.gop_size = fps
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


# ---------------------------------------------------------------------------------------------- annotations


def annotation_json(plans: list[VideoPlan], *, cfg: SyntheticConfig, seed: int) -> str:
    """The ActivityNet v1.3 annotation file of the plans (compact, stable key order)."""
    names = [s.name for s in class_styles(cfg.num_classes)]
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}] + [
        {"nodeId": i + 1, "nodeName": n, "parentId": 0, "parentName": "Root"} for i, n in enumerate(names)
    ]
    database = {
        p.video_id: {
            "subset": p.subset,
            "duration": p.length / cfg.fps,
            "resolution": f"{cfg.width}x{cfg.height}",
            "url": "",
            "annotations": [{"segment": [a / cfg.fps, b / cfg.fps], "label": names[p.label]} for a, b in p.segments],
        }
        for p in plans
    }
    generator = {"name": "samplerbench.synthetic", "version": GENERATOR_VERSION, "seed": seed}
    generator["config"] = dataclasses.asdict(cfg)
    generator["habits"] = {name: dataclasses.asdict(h) for name, h in zip(names, class_habits(cfg), strict=True)}
    doc = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database, "generator": generator}
    return json.dumps(doc, separators=(",", ":"))


@functools.cache
def _worker_assets(cfg: SyntheticConfig, seed: int) -> Assets:
    """:func:`make_assets`, once per worker process: recomputing them (about a second at 340×256) is cheaper
    than pickling their ~120 MB to every worker."""
    return make_assets(cfg, seed=seed)


def _write_video(plan: VideoPlan, path: Path, *, cfg: SyntheticConfig, seed: int) -> None:
    frames = video_frames(plan, assets=_worker_assets(cfg, seed), cfg=cfg)
    atomic_write(path, lambda tmp: write_mp4(tmp, frames, fps=cfg.fps, width=cfg.width, height=cfg.height))


def generate(cfg: SyntheticConfig, *, seed: int, root: Path, workers: int) -> Path:
    """Write ``root/videos/v_<id>.mp4`` and, last, ``root/activity_net.v1-3.min.json``; returns the latter.

    Videos are renamed into place when complete and existing ones are kept, so an interrupted generation
    resumes; the annotation file marks a complete dataset. ``workers`` spawned processes (rendering holds the
    GIL) render and encode; the files are byte-identical for any worker count. Spawning means a calling
    script needs the ``if __name__ == "__main__":`` guard."""
    plans = plan_dataset(cfg, seed=seed)
    todo = [(plan, root / "videos" / f"v_{plan.video_id}.mp4") for plan in plans]
    todo = [(plan, path) for plan, path in todo if not path.exists()]
    if todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context) as pool:
            futures = [pool.submit(_write_video, plan, path, cfg=cfg, seed=seed) for plan, path in todo]
            for future in progress(as_completed(futures), total=len(futures), desc="generating synthetic videos",
                                   unit="video"):
                future.result()
    annotations = root / ANNOTATION_FILE
    text = annotation_json(plans, cfg=cfg, seed=seed)
    atomic_write(annotations, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return annotations


def dataset_root(cfg: SyntheticConfig, *, seed: int, cache_dir: Path) -> Path:
    """``<cache>/synthetic/<hash>``: one folder per (config, seed, generator version)."""
    key = stage_key("synthetic", config=cfg, seed=seed, version=GENERATOR_VERSION)
    return Path(cache_dir) / "synthetic" / key


@register_dataset("synthetic", options=SyntheticConfig)
def build(cfg, cache_dir: Path, options: SyntheticConfig) -> DatasetIndex:
    """Generate the dataset of ``options`` and ``cfg.seed`` unless cached, then parse it."""
    root = dataset_root(options, seed=cfg.seed, cache_dir=cache_dir)
    annotations = root / ANNOTATION_FILE
    if not annotations.exists():
        generate(options, seed=cfg.seed, root=root, workers=cfg.workers)
    return parse_activitynet(annotations, video_dir=root / "videos", name="synthetic")


def preview(cfg: SyntheticConfig, *, seed: int, index: int, path: Path, frames: int = 8) -> Path:
    """Write a PNG of ``frames`` evenly spaced frames of video ``index`` (as rendered, before encoding), each
    titled with its frame number and whether it is salient, above a line naming the class and the scene."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plans = plan_dataset(cfg, seed=seed)
    if not 0 <= index < len(plans):
        raise UserError(f"--index {index}: the dataset has videos 0 .. {len(plans) - 1}")
    plan = plans[index]
    assets = make_assets(cfg, seed=seed)
    video = np.stack(list(video_frames(plan, assets=assets, cfg=cfg)))
    picks = np.linspace(0, plan.length - 1, frames).round().astype(int)
    salient = salient_frames(plan, picks)
    home = home_scenes(plan.label, cfg)
    fig, axes = plt.subplots(1, frames, figsize=(1.6 * frames, 1.6 * cfg.height / cfg.width + 0.75))
    for ax, i, is_salient, k in zip(axes, picks, salient, shot_of(plan, picks), strict=True):
        scene = plan.shots[k].scene
        ax.imshow(video[i])
        ax.set_title(f"frame {i}, shot {k}\nscene {scene}{' (home)' if scene in home else ''}\n"
                     f"{'SALIENT' if is_salient else 'not salient'}", fontsize=7,
                     color="tab:red" if is_salient else "black")
        ax.set_xticks([]), ax.set_yticks([])
    habit = class_habits(cfg)[plan.label]
    fig.suptitle(f"{plan.video_id}: class {assets.styles[plan.label].name} (acts {habit.kind}, home scenes {home[0]} "
                 f"and {home[1]}), "
                 f"{plan.length} frames, salient {', '.join(f'{a}-{b - 1}' for a, b in plan.segments)}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

