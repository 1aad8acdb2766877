"""Progress reporting that stage functions can use without knowing about the terminal.

A stage takes ``progress: Progress | None``; ``progress.task("landmarks", total=n)`` returns a handle with
``advance(k=1, **fields)``; fields (e.g. ``loss=0.12``) are shown beside the bar. The CLI passes a
:class:`RichProgress` (a bar on stderr with rate and ETA); library callers get :class:`Progress`, which is silent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Task:
    def advance(self, k: int = 1, **fields: object) -> None:
        pass

    def update(self, **fields: object) -> None:
        pass


class Progress:
    """Silent progress: the default for library calls and ``--quiet``."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "it") -> Iterator[Task]:
        yield Task()

    def log(self, message: str) -> None:
        pass


def _fmt(fields: dict) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


class RichProgress(Progress):
    """A rich progress bar on stderr: description, bar, done/total, rate, ETA and extra fields."""

    def __init__(self, console):
        self.console = console

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "it") -> Iterator[Task]:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RP

        cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("[cyan]{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        with RP(*cols, console=self.console, transient=False) as bar:
            tid = bar.add_task(description, total=total, info="", rate="")
            handle = _RateTask(bar, tid, unit)
            yield handle

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class _RateTask(Task):
    """A bar's handle; shows the measured rate in the stage's unit (clips/s, frames/s, steps/s)."""

    def __init__(self, bar, task_id, unit):
        self.bar, self.task_id, self.unit = bar, task_id, unit

    def advance(self, k: int = 1, **fields: object) -> None:
        speed = self.bar._tasks[self.task_id].speed
        kw = {"info": _fmt(fields)} if fields else {}
        self.bar.update(self.task_id, advance=k, rate=f"{speed:.1f} {self.unit}/s" if speed else "", **kw)

    def update(self, **fields: object) -> None:
        self.bar.update(self.task_id, info=_fmt(fields))
