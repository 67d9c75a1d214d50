"""One process tree per run folder: an exclusive ``fcntl.flock`` on ``<run_dir>/.lock``.

Two runs started on the same folder (fresh, or both with ``resume=True``) would overwrite each
other's checkpoints and truncate each other's metrics. The lock is held by rank 0 for the whole
run; the kernel releases it when the process ends, even on SIGKILL, so a stale lock file never
blocks a later resume. The file holds the holder's pid for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from latentmim.config.errors import ConfigError

LOCK_NAME = ".lock"


class RunLock:
    """Context manager: take the run folder's lock or fail with one line naming folder and pid.

    Args:
        run_dir: the run folder (created if missing).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a .lock that is a symlink is refused, never followed (its target would be truncated)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            if self.path.is_symlink():
                raise ConfigError(f"output_dir: '{self.path}' is a symbolic link, not a lock file; "
                                  "remove it or choose another job_name/output_dir") from None
            raise ConfigError(f"output_dir: cannot write to '{self.path.parent}': {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"output_dir: '{self.path.parent}' is in use by another run (pid {holder}); "
                              "wait for it to finish or choose another job_name/output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
