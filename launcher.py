"""The authors' launch command, verbatim:

    PYTHONPATH=. python launcher.py --config-name=lmim worker=main_lmim encoder=vit_base ...

A thin shim over ``latentmim pretrain`` (same keys, same validation).
"""

import sys
from pathlib import Path

# Works from a plain checkout too (PYTHONPATH=. as in the authors' command): find src/.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from latentmim.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
