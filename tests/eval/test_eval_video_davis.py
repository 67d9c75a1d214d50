"""The DAVIS folder layout: written by the synthetic writer, read back by the reader."""

import numpy as np
import pytest
from PIL import Image

from latentmim.data.errors import DataError
from latentmim.data.synthetic_video import SyntheticVideos
from latentmim.eval.dense.davis import (
    list_sequences,
    read_annotation,
    read_frame,
    voc_palette,
    write_annotation,
    write_davis,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    videos = SyntheticVideos(2, num_frames=5, image_size=48, seed=3)
    vids = [videos[0], videos[1]]
    write_davis(root, ((v.name, v.frames, v.masks) for v in vids))
    return root, vids


def test_voc_palette_known_colours():
    pal = voc_palette()
    assert len(pal) == 768
    assert pal[:15] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
    assert pal[3 * 255:] == [224, 224, 192]  # the void colour of VOC / DAVIS


def test_reader_round_trip(tree):
    root, vids = tree
    assert (root / "ImageSets" / "2017" / "val.txt").read_text().split() == [v.name for v in vids]
    seqs = list_sequences(root)
    assert [s.name for s in seqs] == [v.name for v in vids]
    for seq, vid in zip(seqs, vids, strict=True):
        assert len(seq.frames) == 5 and seq.has_ground_truth
        assert [p.name for p in seq.frames] == [f"{t:05d}.jpg" for t in range(5)]
        labels, palette = read_annotation(seq.annotations[2])
        np.testing.assert_array_equal(labels, vid.masks[2])  # PNG is lossless
        assert palette == voc_palette()
        with Image.open(seq.annotations[0]) as img:
            assert img.mode == "P"
        frame = read_frame(seq.frames[1])
        assert frame.shape == vid.frames[1].shape and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - vid.frames[1]).mean() < 4  # JPEG quality 95
    assert [s.name for s in list_sequences(root, names=[vids[1].name])] == [vids[1].name]


def test_missing_later_annotations_mean_no_ground_truth(tree, tmp_path):
    root, vids = tree
    write_davis(tmp_path, [(vids[0].name, vids[0].frames, vids[0].masks)])
    (tmp_path / "Annotations" / "480p" / vids[0].name / "00003.png").unlink()
    (seq,) = list_sequences(tmp_path)
    assert seq.annotations[3] is None and not seq.has_ground_truth


def test_errors_name_the_path(tree, tmp_path):
    root, vids = tree
    cases = [
        (lambda: list_sequences(tmp_path / "nope"), "nope"),
        (lambda: list_sequences(root, split="test-dev"), "test-dev.txt"),
        (lambda: list_sequences(root, names=["ghost"]), "ghost"),
    ]
    for fn, needle in cases:
        with pytest.raises(DataError, match=needle):
            fn()
    broken = tmp_path / "broken"
    write_davis(broken, [(vids[0].name, vids[0].frames, vids[0].masks)])
    first = broken / "Annotations" / "480p" / vids[0].name / "00000.png"
    first.unlink()
    with pytest.raises(DataError, match="00000.png"):
        list_sequences(broken)
    Image.fromarray(vids[0].masks[0].astype(np.uint8)).save(first)  # mode L, not indexed
    with pytest.raises(DataError, match="not an indexed PNG"):
        read_annotation(first)


def test_write_annotation_keeps_palette(tmp_path):
    labels = np.array([[0, 1], [2, 255]])
    write_annotation(tmp_path / "a.png", labels, voc_palette())
    back, pal = read_annotation(tmp_path / "a.png")
    np.testing.assert_array_equal(back, labels)
    assert pal == voc_palette()
