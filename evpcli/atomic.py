"""Atomic file writes: a hidden temp file beside the destination, renamed onto it only when complete.

The lowest layer of file handling, used by the workspace, the media writers and the engines alike (it knows
nothing of any of them): a reader never sees a half-written file, and a writer killed mid-way leaves only a
hidden temp file that the next write of the same file removes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def temp_beside(path: str | os.PathLike, suffix: str = "") -> Path:
    """A new hidden temp file beside ``path``, named after it and this process: ``.<name>.evp<pid>.<random><suffix>``.

    Temp files of the same target left by a process that no longer exists (killed while writing it) are removed
    first, so a killed writer's litter goes with the next write of the same file.
    """
    import glob

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f".{path.name}.evp"
    for old in glob.glob(os.path.join(glob.escape(str(path.parent)), glob.escape(head) + "*")):
        pid = os.path.basename(old)[len(head):].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(old)
    fd, tmp = tempfile.mkstemp(prefix=f"{head}{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit it is renamed onto ``path``, on error removed.

    The temp name (:func:`temp_beside`) keeps the suffix (``.x.npz`` writers that append suffixes still work) and
    starts with a dot, so listings that skip hidden files never see a half-written artifact.
    """
    path = Path(path)
    tmp_path = temp_beside(path, f".tmp{path.suffix}")
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual file mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
