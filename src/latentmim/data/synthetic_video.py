"""SyntheticVideos: short procedural videos with per-frame instance masks, for offline
video-object-segmentation runs (the DAVIS protocol without DAVIS).

Each video shows 1-3 shapes (the classes of :mod:`latentmim.data.shapes`) moving in straight
lines (bouncing off the frame edges), rotating, and passing in front of each other over a
textured background seen by a slowly panning camera, with fresh pixel noise in every frame.
Objects keep their depth order, so a later object occludes an earlier one where they overlap;
the instance map holds 0 for background and ``j`` (1-based drawing order) for object ``j``,
which is exactly a DAVIS annotation. Objects head roughly towards the frame centre, so
occlusions are common; in the first frame every object shows at least
``_MIN_FIRST_VISIBLE`` of its area (the first mask is what semi-supervised methods get).

Video ``i`` is a pure function of ``(seed, i)`` and the size arguments: it is rendered from
``numpy.random.default_rng((seed, VIDEO_STREAM, i))``; nothing is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from latentmim.data.backgrounds import pixel_grid, random_background
from latentmim.data.errors import DataError
from latentmim.data.shapes import NUM_SHAPES, draw_shape

VIDEO_STREAM = 0x76696420  # b"vid ": keeps video seeds apart from the image dataset's
_RADIUS = (0.12, 0.22)  # object circumradius, fraction of the side
_SPEED = (0.03, 0.06)  # displacement per frame, fraction of the side
_SPIN = 0.15  # max rotation per frame, radians
_PAN = 0.08  # camera pan over the whole video, fraction of the side
_BG_CONTRAST = 0.5  # as in SyntheticShapes: the foreground reads as figure on ground
_MIN_LUMA_CONTRAST = 60.0  # object vs background brightness difference (0..255)
_MIN_FIRST_VISIBLE = 0.3
_LAYOUT_TRIES = 8
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class SyntheticVideo:
    """One rendered video.

    Attributes:
        name: sequence name (``synth_<index>``).
        frames: (T, H, W, 3) uint8 RGB.
        masks: (T, H, W) int64 instance maps: 0 background, j = object j.
        classes: shape class of each object, in drawing (depth) order.
        visible_fraction: (T, num_objects) float, the part of each object's in-frame area that
            is not hidden behind objects in front of it (1 = unoccluded).
    """

    name: str
    frames: np.ndarray
    masks: np.ndarray
    classes: tuple[int, ...]
    visible_fraction: np.ndarray


@dataclass(frozen=True)
class _Track:
    shape: int
    radius: float
    centres: np.ndarray  # (T, 2) x, y per frame
    angles: np.ndarray  # (T,)


def _bounce(start: float, velocity: float, lo: float, hi: float, steps: int) -> np.ndarray:
    """Positions of a point moving at constant speed, reflected at ``lo`` and ``hi``."""
    span = hi - lo
    raw = start - lo + velocity * np.arange(steps)
    folded = np.mod(raw, 2 * span)  # triangle wave: reflection at both ends
    return lo + np.where(folded > span, 2 * span - folded, folded)


def _sample_tracks(rng: np.random.Generator, size: int, num_frames: int) -> list[_Track]:
    tracks = []
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(*_RADIUS) * size
        lo, hi = 0.6 * r, size - 0.6 * r  # most of the object stays inside the frame
        x0, y0 = rng.uniform(lo, hi, size=2)
        # Head roughly for the centre so the objects' paths cross (occlusions).
        heading = math.atan2(size / 2 - y0, size / 2 - x0) + rng.normal(0, 0.6)
        speed = rng.uniform(*_SPEED) * size
        xs = _bounce(x0, speed * math.cos(heading), lo, hi, num_frames)
        ys = _bounce(y0, speed * math.sin(heading), lo, hi, num_frames)
        angles = rng.uniform(0, 2 * math.pi) + rng.uniform(-_SPIN, _SPIN) * np.arange(num_frames)
        tracks.append(_Track(int(rng.integers(NUM_SHAPES)), r, np.stack([xs, ys], 1), angles))
    return tracks


def _object_mask(track: _Track, t: int, size: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    (cx, cy), angle = track.centres[t], float(track.angles[t])
    draw_shape(ImageDraw.Draw(canvas), track.shape, float(cx), float(cy), track.radius, angle)
    return np.asarray(canvas) > 0


def _instances(tracks: list[_Track], t: int, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    masks = [_object_mask(tr, t, size) for tr in tracks]
    inst = np.zeros((size, size), dtype=np.int64)
    for j, m in enumerate(masks, start=1):
        inst[m] = j  # later objects are in front
    return masks, inst


def _first_frame_ok(tracks: list[_Track], size: int) -> bool:
    masks, inst = _instances(tracks, 0, size)
    visible = np.bincount(inst.ravel(), minlength=len(tracks) + 1)[1:]
    return all(v >= _MIN_FIRST_VISIBLE * max(m.sum(), 1) and v > 0 for v, m in zip(visible, masks, strict=True))


def _pick_colour(bg_luma: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform RGB colour whose brightness differs from the background's by enough (3,)."""
    for _ in range(12):
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        if abs(float(colour @ _LUMA) - bg_luma) >= _MIN_LUMA_CONTRAST:
            return colour
    return colour  # rare: keep the last draw; masks stay exact regardless


def render_video(seed: int, index: int, num_frames: int, size: int) -> SyntheticVideo:
    """Render video ``index``; a pure function of the arguments."""
    rng = np.random.default_rng((seed, VIDEO_STREAM, index))
    pan = int(round(_PAN * size))
    bg = random_background(size + pan, rng)
    bg_mean = bg.mean(axis=(0, 1))
    bg = bg_mean + _BG_CONTRAST * (bg - bg_mean)
    # The camera window slides linearly from one corner region to another.
    start, end = rng.integers(0, pan + 1, size=2), rng.integers(0, pan + 1, size=2)
    for _ in range(_LAYOUT_TRIES):
        tracks = _sample_tracks(rng, size, num_frames)
        if _first_frame_ok(tracks, size):
            break
    bg_luma = float(bg_mean @ _LUMA)
    colours = [_pick_colour(bg_luma, rng) for _ in tracks]
    ramps = [(rng.uniform(0, 2 * math.pi), rng.uniform(0, 40)) for _ in tracks]
    xs, ys = pixel_grid(size)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    masks = np.empty((num_frames, size, size), dtype=np.int64)
    visible = np.ones((num_frames, len(tracks)), dtype=np.float64)
    for t in range(num_frames):
        oy, ox = np.round(start + (end - start) * t / max(num_frames - 1, 1)).astype(int)
        canvas = bg[oy:oy + size, ox:ox + size].copy()
        obj_masks, masks[t] = _instances(tracks, t, size)
        for j, m in enumerate(obj_masks):
            if m.any():
                visible[t, j] = np.count_nonzero(masks[t] == j + 1) / np.count_nonzero(m)
        for tr, m, colour, (phi, slope) in zip(tracks, obj_masks, colours, ramps, strict=True):
            # A shading ramp that turns with the object, so motion is visible inside it too.
            a = phi + tr.angles[t] - tr.angles[0]
            cx, cy = tr.centres[t]
            ramp = ((xs[m] - cx) * math.cos(a) + (ys[m] - cy) * math.sin(a)) / tr.radius
            canvas[m] = colour + slope * ramp[:, None]
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * 4.0
        frames[t] = np.clip(canvas, 0, 255).astype(np.uint8)
    return SyntheticVideo(f"synth_{index:04d}", frames, masks, tuple(tr.shape for tr in tracks), visible)


class SyntheticVideos:
    """A list of procedural videos; see the module docstring.

    Args:
        num_videos: number of videos (>= 1).
        num_frames: frames per video (>= 2).
        image_size: frame side in pixels (>= 32).
        seed: non-negative seed; with the index it fixes every pixel.
    """

    def __init__(self, num_videos: int, num_frames: int = 12, image_size: int = 96, seed: int = 0) -> None:
        if num_videos < 1:
            raise DataError(f"synthetic_video: num_videos must be >= 1, got {num_videos}")
        if num_frames < 2:
            raise DataError(f"synthetic_video: num_frames must be >= 2, got {num_frames}")
        if image_size < 32:
            raise DataError(f"synthetic_video: image_size must be >= 32, got {image_size}")
        if seed < 0:
            raise DataError(f"synthetic_video: seed must be >= 0, got {seed}")
        self.num_videos, self.num_frames = int(num_videos), int(num_frames)
        self.image_size, self.seed = int(image_size), int(seed)

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> SyntheticVideo:
        if index < 0:
            index += self.num_videos
        if not 0 <= index < self.num_videos:
            raise IndexError(f"synthetic_video: index {index} out of range for {self.num_videos} videos")
        return render_video(self.seed, index, self.num_frames, self.image_size)
