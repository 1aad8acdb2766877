"""Exceptions the CLI turns into exit codes.

``EvpError``: the work failed or an input is bad; the message is one line that says what to do (exit 1).
``NotBuiltError``: the stage exists as a command but is not implemented yet (exit 2, like a usage error).
"""

from __future__ import annotations

import os


class EvpError(Exception):
    """A failure the user can act on. The message is shown as one line."""

    exit_code = 1


class MediaError(EvpError):
    """A media file is missing, empty, unreadable or lacks the stream asked for."""


class NotBuiltError(EvpError):
    """A pipeline stage that this version does not implement yet."""

    exit_code = 2


class UsageError(EvpError):
    """An option value out of its range (exit 2, like any usage error). Raised by the configs' own checks."""

    exit_code = 2


def disk_full(exc: BaseException, folder: str | os.PathLike | None = None, need: int = 1 << 20) -> bool:
    """Whether a write failed for lack of space: an ENOSPC/EDQUOT anywhere in the chain of errors, the OS's message
    inside a library's (libsndfile: 'System error', torch: 'unexpected pos'), or ``folder``'s disk with less than
    ``need`` bytes free."""
    import errno
    import shutil

    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return True
        e = e.__cause__ or e.__context__
    if folder is not None:
        try:
            return shutil.disk_usage(folder).free < need
        except OSError:
            return False
    return False
