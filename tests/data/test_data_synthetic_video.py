"""SyntheticVideos: deterministic, exact instance masks, real motion and occlusion."""

import numpy as np
import pytest

from latentmim.data.errors import DataError
from latentmim.data.synthetic_video import SyntheticVideos


@pytest.fixture(scope="module")
def videos():
    ds = SyntheticVideos(8, num_frames=10, image_size=64, seed=0)
    return [ds[i] for i in range(len(ds))]


def test_deterministic_from_seed_and_index(videos):
    again = SyntheticVideos(8, num_frames=10, image_size=64, seed=0)[3]
    np.testing.assert_array_equal(again.frames, videos[3].frames)
    np.testing.assert_array_equal(again.masks, videos[3].masks)
    other_seed = SyntheticVideos(8, num_frames=10, image_size=64, seed=1)[3]
    assert not np.array_equal(other_seed.frames, videos[3].frames)
    assert not np.array_equal(videos[2].frames, videos[3].frames)


def test_shapes_and_instance_ids(videos):
    for v in videos:
        assert v.frames.shape == (10, 64, 64, 3) and v.frames.dtype == np.uint8
        assert v.masks.shape == (10, 64, 64)
        n = len(v.classes)
        assert 1 <= n <= 3 and v.visible_fraction.shape == (10, n)
        assert set(np.unique(v.masks)) <= set(range(n + 1))
        assert set(np.unique(v.masks[0])) == set(range(n + 1))  # every object shows in frame 0


def test_objects_move_and_occlude(videos):
    moved = []
    for v in videos:
        for j in range(1, len(v.classes) + 1):
            ys, xs = np.nonzero(v.masks[0] == j)
            ye, xe = np.nonzero(v.masks[-1] == j)
            if len(ys) and len(ye):
                moved.append(np.hypot(ys.mean() - ye.mean(), xs.mean() - xe.mean()))
    assert np.median(moved) > 5  # pixels of centroid motion over 10 frames at 64 px
    assert min(v.visible_fraction.min() for v in videos) < 0.7  # someone gets hidden
    # the mask follows the pixels: object pixels differ from the background around them
    v = videos[0]
    fg, bg = v.frames[0][v.masks[0] == 1].mean(0), v.frames[0][v.masks[0] == 0].mean(0)
    assert np.abs(fg - bg).sum() > 20


@pytest.mark.parametrize(
    "kwargs,needle",
    [({"num_videos": 0}, "num_videos"), ({"num_frames": 1}, "num_frames"),
     ({"image_size": 16}, "image_size"), ({"seed": -1}, "seed")],  # fmt: skip
)
def test_bad_arguments(kwargs, needle):
    args = {"num_videos": 2, **kwargs}
    with pytest.raises(DataError, match=needle):
        SyntheticVideos(**args)


def test_index_out_of_range():
    with pytest.raises(IndexError):
        SyntheticVideos(2)[2]
