"""Checks on the files a command will write, done before any work.

Every command that writes a file the user names (``--out``, ``--preview``, a corpus folder) calls
:func:`check_output` (or :func:`check_output_dir`) first, so that a bad path costs nothing and never destroys an
input: an output that resolves to one of the command's inputs (the same path, a symlink to it, a hard link) is
refused, as is an output that is a folder, lies under a file, or sits in a folder that cannot be made or written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from evpcli.errors import EvpError


def _same_file(out: Path, given: Path) -> bool:
    """Whether writing ``out`` would write over ``given``: the same path once resolved (also before the output's
    folders exist), or the same file under another name (hard link, bind mount)."""
    if os.path.abspath(out) == os.path.abspath(given) or out.resolve() == given.resolve():
        return True
    try:
        return os.path.samefile(out, given)
    except OSError:
        return False


def _writable_folder(folder: Path, option: str, shown: Path) -> None:
    """Make ``folder`` (and its parents) if needed and check a file can be created in it."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise EvpError(f"{option} {shown}: {parent} is a file, not a folder; choose another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvpError(f"{option} {shown}: cannot make the folder {folder} ({exc.strerror or exc}); "
                       "choose another path") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".evp-write-check.", dir=folder)
    except OSError as exc:
        raise EvpError(f"{option} {shown}: cannot write in {folder} ({exc.strerror or exc}); "
                       "choose another path") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), option: str = "--out",
                 input_names: Iterable[str] | None = None) -> Path:
    """Check that the file ``path`` can be written and is none of ``inputs``; returns it as a Path.

    ``option`` names the output in messages; ``input_names`` (parallel to ``inputs``) name the inputs
    (default "an input"). Raises :class:`EvpError` with a one-line message that says what to do. The output's
    folder is made if it does not exist.
    """
    out = Path(path).expanduser()
    inputs = list(inputs)
    names = list(input_names) if input_names is not None else ["an input"] * len(inputs)
    for given, name in zip(inputs, names, strict=True):
        if given is not None and Path(given).exists() and _same_file(out, Path(given)):
            raise EvpError(f"{option} {out} is the same file as {name} ({given}); writing it would destroy the "
                           "input, choose another output path")
    if out.is_dir():
        raise EvpError(f"{option} {out} is a folder; give a file path such as {out / 'out.mp4'}")
    if out.exists() and not out.is_file():
        raise EvpError(f"{option} {out} is not a regular file (a device or pipe); give a file path")
    _writable_folder(out.parent if str(out.parent) else Path("."), option, out)
    return out


def check_outside(path: str | os.PathLike, folder: str | os.PathLike, option: str = "--out") -> None:
    """EvpError when the output ``path`` would land inside ``folder`` (the workspace: its index, caches and models
    must never be overwritten by an output)."""
    out = Path(path).expanduser()
    root = Path(folder).expanduser()
    try:
        inside = os.path.commonpath([os.path.realpath(out), os.path.realpath(root)]) == os.path.realpath(root)
    except ValueError:  # different drives
        inside = False
    if inside:
        raise EvpError(f"{option} {out} is inside the workspace {root}; its files (index, caches, models) must not be "
                       "overwritten: write outputs elsewhere")


def check_output_dir(path: str | os.PathLike, option: str = "OUT") -> Path:
    """Check that the folder ``path`` exists or can be made and is writable; returns it as a Path."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise EvpError(f"{option} {out} is a file; give a folder")
    _writable_folder(out, option, out)
    return out
