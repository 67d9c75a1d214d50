"""Geometry of the shape classes used by the synthetic benchmark.

Every shape is described by its circumradius ``radius`` (half the diameter of the
smallest centred circle containing it), its centre and a rotation angle, and is
drawn as a filled binary mask with PIL. Shapes with holes (ring, crescent) draw the
hole with value 0, so the hole shows whatever lies underneath after compositing.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

from latentmim.data.errors import DataError

SHAPE_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "pentagon",
    "hexagon",
    "star",
    "cross",
    "ring",
    "crescent",
    "diamond",
)
NUM_SHAPES: int = len(SHAPE_NAMES)

# Inner radius of the ring relative to the outer one: thick enough to stay visible
# at 32 px, thin enough that the hole is obvious.
_RING_INNER = 0.55
# The crescent is a disc minus a shifted disc of this radius and centre offset.
_CRESCENT_CUT_RADIUS = 0.85
_CRESCENT_CUT_OFFSET = 0.5


def _regular_polygon(num_vertices: int) -> np.ndarray:
    """Unit-circumradius regular polygon with a vertex pointing up.

    Returns:
        Vertices, shape (num_vertices, 2), as (x, y) with y pointing down.
    """
    angles = -math.pi / 2 + 2 * math.pi * np.arange(num_vertices) / num_vertices
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(num_points: int, inner: float) -> np.ndarray:
    """Unit star alternating outer (1) and inner (``inner``) radii, shape (2*num_points, 2)."""
    angles = -math.pi / 2 + math.pi * np.arange(2 * num_points) / num_points
    radii = np.where(np.arange(2 * num_points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(half_width: float) -> np.ndarray:
    """Plus sign with arms of half-width ``half_width`` and reach 1, shape (12, 2)."""
    w = half_width
    pts = [(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1),
           (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -1)]  # fmt: skip
    arr = np.asarray(pts, dtype=np.float64)
    # Rescale so the corner points lie on the unit circle, like the other shapes.
    return arr / np.hypot(1.0, w)


# Unit polygons by shape class; circle, ring and crescent are drawn from discs instead.
_HALF_SQRT2 = math.sqrt(0.5)
_POLYGONS: dict[int, np.ndarray] = {
    SHAPE_NAMES.index("square"): np.array(
        [
            [-_HALF_SQRT2, -_HALF_SQRT2],
            [_HALF_SQRT2, -_HALF_SQRT2],
            [_HALF_SQRT2, _HALF_SQRT2],
            [-_HALF_SQRT2, _HALF_SQRT2],
        ]
    ),
    SHAPE_NAMES.index("triangle"): _regular_polygon(3),
    SHAPE_NAMES.index("pentagon"): _regular_polygon(5),
    SHAPE_NAMES.index("hexagon"): _regular_polygon(6),
    SHAPE_NAMES.index("star"): _star(5, 0.42),
    SHAPE_NAMES.index("cross"): _cross(0.3),
    # Elongated rhombus (width/height = 0.55) so it is not a rotated square.
    SHAPE_NAMES.index("diamond"): np.array([[0.0, -1.0], [0.55, 0.0], [0.0, 1.0], [-0.55, 0.0]]),
}
_CIRCLE = SHAPE_NAMES.index("circle")
_RING = SHAPE_NAMES.index("ring")
_CRESCENT = SHAPE_NAMES.index("crescent")


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: int,
    cx: float,
    cy: float,
    radius: float,
    angle: float,
) -> None:
    """Draw one filled shape into a single-channel ('L') image.

    Pixels inside the shape get value 1, holes get value 0; everything else is
    left untouched, so the caller should start from a zero image.

    Args:
        draw: Drawing context of a mode 'L' image.
        shape: Shape class, index into :data:`SHAPE_NAMES`.
        cx: Centre x in pixels.
        cy: Centre y in pixels.
        radius: Circumradius in pixels.
        angle: Rotation in radians (ignored by the rotation-invariant circle/ring).
    """
    if shape == _CIRCLE:
        _disc(draw, cx, cy, radius, 1)
    elif shape == _RING:
        _disc(draw, cx, cy, radius, 1)
        _disc(draw, cx, cy, radius * _RING_INNER, 0)
    elif shape == _CRESCENT:
        _disc(draw, cx, cy, radius, 1)
        off = radius * _CRESCENT_CUT_OFFSET
        _disc(draw, cx + off * math.cos(angle), cy + off * math.sin(angle),
              radius * _CRESCENT_CUT_RADIUS, 0)  # fmt: skip
    elif shape in _POLYGONS:
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[c, s], [-s, c]]) * radius
        pts = _POLYGONS[shape] @ rot + np.array([cx, cy])
        draw.polygon(pts.ravel().tolist(), fill=1)
    else:
        raise DataError(f"unknown shape class {shape}; expected 0..{NUM_SHAPES - 1}")
