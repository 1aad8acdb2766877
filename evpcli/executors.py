"""Where a stage's per-item work runs: in this process, in a local process pool (``--jobs N``), or on a Ray cluster
(``--executor ray``). One interface, so prepare-dataset, build-pairs and batch-render have one code path each.

A stage opens an executor with :func:`open_executor` (a context manager, entered *before* any progress bar starts:
a local pool forks its workers while the parent has no other thread) and calls ``executor.run(fn, jobs)``, which
yields ``(i, result, error)`` for every job as it finishes (any order): ``result = fn(jobs[i])``, or ``error`` an
exception when the job raised in a worker or its worker died (:class:`WorkerLost`). ``fn`` must be a module-level
function and the jobs plain data (they are pickled to the workers).

The work function writes its artifacts itself, through the workspace's atomic writes (temp file + rename), into the
shared workspace; it returns only small results. The SQLite index is written by the caller (the driver) alone,
from those results, so Ray workers on other machines never open it (they need the workspace on a shared file
system, and evpcli installed).

- :class:`LocalExecutor` with one worker runs each job in this process (an exception propagates as from any call);
  with more, a process pool whose workers ignore Ctrl-C and die with this process (:mod:`evpcli.workers`).
- :class:`RayExecutor` submits one Ray task per job (1 CPU each). With no address it starts a local in-process Ray
  with ``workers`` CPUs (or uses the Ray this process has already initialised, e.g. a test's ``ray.init``); with
  an address (``auto``, ``ray://host:10001``, ``host:6379``) it joins that cluster. Ctrl-C cancels the tasks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from evpcli.errors import EvpError, UsageError

EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install 'evpcli[ray]'"


class WorkerLost(EvpError):
    """A job's worker died under it (a crash in native code, a killed process, a lost Ray node); a re-run retries."""


class LocalExecutor:
    """This process (``workers`` 1) or a pool of ``workers`` forked processes."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        if self.workers > 1:
            from evpcli.workers import worker_initializer

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            init, initargs = worker_initializer()  # workers ignore Ctrl-C and die with this process (kill -9 too)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=init, initargs=initargs)
            # a forking pool starts all its workers at the first submit: make that now, before the caller starts a
            # progress bar's thread (forking a process with other threads running is unsafe)
            self._pool.submit(os.getpid).result()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        if exc_type is not None:  # an error or Ctrl-C in the caller: stop now, not after every queued job
            from evpcli.workers import stop_pool

            stop_pool(self._pool)
        else:
            self._pool.shutdown(wait=True)
        self._pool = None

    def run(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        if self._pool is None:
            for i, job in enumerate(jobs):
                yield i, fn(job), None
            return
        futures = {self._pool.submit(fn, job): i for i, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=futures.get):
                try:
                    yield futures[fut], fut.result(), None
                except BrokenProcessPool as exc:  # its worker died (and with it the pool)
                    yield futures[fut], None, WorkerLost(f"worker process died ({type(exc).__name__}); re-run to retry")
                except Exception as exc:  # the job raised
                    yield futures[fut], None, exc


class RayExecutor:
    """One Ray task per job on a local in-process Ray (``address`` None) or on the cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None):
        self.address = address or None
        self.workers = max(1, int(workers))
        self._started = False
        self._ray = None

    def __enter__(self) -> RayExecutor:
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            import logging

            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.ERROR, "configure_logging": True}
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise EvpError(f"cannot start or reach {where}: {first}; check --ray-address "
                               "(`ray status` on the head node shows it)") from None
            self._started = True
        if self.address is not None or not self._started:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def run(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=0)(fn)
        in_flight = 4 * self.workers  # enough to keep every CPU busy; a MEAD-size list is not queued all at once
        refs: dict[Any, int] = {}
        queue = iter(enumerate(jobs))
        try:
            for i, job in queue:
                refs[task.remote(job)] = i
                if len(refs) >= in_flight:
                    break
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    i = refs.pop(ref)
                    for k, job in queue:  # keep the queue full before handing the result back
                        refs[task.remote(job)] = k
                        break
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the job raised: the original exception
                        cause = getattr(exc, "cause", None)
                        yield i, None, cause if isinstance(cause, Exception) else exc
                    except ray.exceptions.RayError as exc:  # the worker or its node died
                        first = str(exc).splitlines()[0] if str(exc) else ""
                        yield i, None, WorkerLost(f"Ray worker lost ({type(exc).__name__}: {first[:120]}); "
                                                  "re-run to retry")
                    else:
                        yield i, result, None
        except BaseException:  # Ctrl-C or an error in the caller: stop the tasks still queued or running
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise


def import_ray():
    """The ``ray`` module, or a one-line usage error (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed; {RAY_INSTALL}") from None
    return ray


def make_executor(executor: str = "local", workers: int = 1, ray_address: str | None = None):
    """An executor by name (``local`` or ``ray``), not yet entered. Raises :class:`UsageError` for a bad name, an
    address without Ray, or Ray not installed."""
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; use local or ray")
    if workers < 1:
        raise UsageError(f"--jobs must be at least 1, got {workers}")
    if executor == "local":
        if ray_address:
            raise UsageError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    import_ray()
    return RayExecutor(workers, ray_address)


@contextlib.contextmanager
def open_executor(executor: str = "local", workers: int = 1, ray_address: str | None = None,
                  n_jobs: int | None = None) -> Iterator[LocalExecutor | RayExecutor]:
    """Enter an executor for a stage with ``n_jobs`` jobs (None: unknown). The choice is checked even when there
    is nothing to do, but then nothing is started (no pool, no Ray); a local pool has at most ``n_jobs`` workers."""
    ex = make_executor(executor, workers, ray_address)
    if n_jobs is not None and n_jobs == 0:
        ex = LocalExecutor(1)
    elif isinstance(ex, LocalExecutor) and n_jobs is not None:
        ex = LocalExecutor(min(ex.workers, n_jobs))
    with ex:
        yield ex
