"""Worker processes that never outlive the evp process that started them.

Every process pool (prepare-dataset, build-pairs, synth-corpus ``--jobs``) starts its workers with
:func:`worker_initializer` / :func:`init_worker`. A worker then

- ignores SIGINT (Ctrl-C reaches the whole process group; the parent stops the workers itself) and takes SIGTERM
  with the default action (the parent's SIGTERM handler, inherited over fork, must not run in a worker);
- dies with its parent, however the parent ends (``kill -9`` included): on Linux the kernel sends it SIGKILL
  when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a watchdog thread checks once a second that its
  parent is still the process that started it and kills the worker otherwise.

A worker writes files only through temp files that are renamed when complete, so a worker killed this way leaves
no half file under a real name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 1.0


def _parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:  # the parent died; this process was handed to init (or a subreaper)
            os.kill(os.getpid(), signal.SIGKILL)


def init_worker(parent_pid: int, interval: float = WATCH_INTERVAL_S) -> None:
    """Run first in every worker process (a pool's ``initializer``); ``parent_pid`` is the pool owner's pid."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, interval), name="evp-parent-watch", daemon=True).start()


def worker_initializer(extra=None, extra_args: tuple = ()) -> tuple:
    """``(initializer, initargs)`` for a ProcessPoolExecutor: :func:`init_worker`, then ``extra(*extra_args)``."""
    return _init_then, (os.getpid(), extra, tuple(extra_args))


def _init_then(parent_pid: int, extra, extra_args: tuple) -> None:
    init_worker(parent_pid)
    if extra is not None:
        extra(*extra_args)


class TerminateRequested(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so a run stops exactly as on Ctrl-C (workers stopped, state kept)."""


def _on_sigterm(signum, frame) -> None:
    raise TerminateRequested()


def handle_sigterm_like_sigint():
    """Install a SIGTERM handler that raises :class:`TerminateRequested` (a KeyboardInterrupt); returns the previous
    handler to restore, or None when this is not the main thread (signals can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def stop_pool(pool, timeout: float = 5.0) -> None:
    """Stop a ProcessPoolExecutor now: queued jobs cancelled, running workers terminated (SIGTERM) and reaped.
    For an error or an interrupt in the parent, where ``shutdown(wait=True)`` would wait for every queued job."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=timeout)
