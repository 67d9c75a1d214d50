"""A full disk during a checkpoint save: one line naming the file, the previous checkpoint intact."""

import errno

import torch

import latentmim.runtime.checkpoint as checkpoint
from latentmim.cli.main import main
from latentmim.runtime.checkpoint import load_checkpoint


def test_disk_full_during_save_keeps_the_previous_checkpoint(tiny, tmp_path, capsys, monkeypatch):
    real_save, calls = torch.save, {"n": 0}

    def save_until_full(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th checkpoint write finds the disk full half-way
            f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    args = ["pretrain", *tiny, "ckpt_steps=1", "job_name=full"]
    assert main(args) == 2
    err = capsys.readouterr().err
    latest = tmp_path / "full" / "checkpoint_latest.pth"
    assert f"cannot write '{latest}': No space left on device; the previous file is intact" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert load_checkpoint(latest)["batch"] == 3  # the 3rd save, untouched by the failed 4th
    assert not list(latest.parent.glob(".*.tmp"))  # the torn temporary file was removed
    monkeypatch.undo()
    assert main([*args, "resume=True"]) == 0  # space is back: the run continues from step 3
