"""Test helper: a training process that announces, then hangs, halfway through writing a checkpoint.

Run as ``python kill_inside_save.py READY_FILE SAVE_NUMBER latentmim-pretrain-args...``: the
SAVE_NUMBER-th checkpoint write stops after half of its bytes, touches READY_FILE and sleeps, so
the test can SIGKILL the process inside ``torch.save`` deterministically.
"""

import sys
import time
from pathlib import Path

import torch

import latentmim.runtime.checkpoint as checkpoint
from latentmim.cli.main import main

ready, target, args = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
count = {"n": 0}
real_save = torch.save


def save_then_hang(obj, f, *a, **k):
    count["n"] += 1
    if count["n"] < target:
        return real_save(obj, f, *a, **k)
    import io

    buf = io.BytesIO()
    real_save(obj, buf, *a, **k)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    ready.touch()
    time.sleep(600)


checkpoint.torch.save = save_then_hang
sys.exit(main(args))
